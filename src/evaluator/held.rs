//! A reusable buffer and whether its contents are current.

/// A buffer kept from one use to the next, and whether what it holds is current: one value,
/// so that the contents and their validity cannot drift apart.
#[derive(Debug, Clone, Default)]
pub(super) struct Held<T> {
    value: T,
    current: bool,
}

impl<T> Held<T> {
    pub(super) fn new(value: T) -> Self {
        Held {
            value,
            current: false,
        }
    }
    /// What it holds, if current.
    pub(super) fn get(&self) -> Option<&T> {
        self.current.then_some(&self.value)
    }
    pub(super) fn forget(&mut self) {
        self.current = false;
    }
    /// The buffer to be written, no longer current until [`hold`](Self::hold).
    pub(super) fn refill(&mut self) -> &mut T {
        self.current = false;
        &mut self.value
    }
    /// What was written is current.
    pub(super) fn hold(&mut self) {
        self.current = true;
    }
}
