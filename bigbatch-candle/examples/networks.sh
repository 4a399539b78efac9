#!/usr/bin/env bash
# The whole network comparison of the README, in two single-threaded streams (one per core):
# at batch sizes of 32 a Candle step gains nothing from a second thread, so two runs side by
# side finish the comparison in about half the time. Writes results/networks.csv and the SVGs.
#
#   bash bigbatch-candle/examples/networks.sh [FASHION_DIR] [MNIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
fashion=${1:-../shared/data/fashion-mnist}
mnist=${2:-../shared/data}
out=bigbatch-candle/results
mkdir -p "$out"
rm -f "$out"/networks.csv "$out"/*.part.csv "$out"/*.svg
cargo build --release -p bigbatch-candle --example networks
bin=target/release/examples/networks
export RAYON_NUM_THREADS=1
start=$(date +%s)
(
  # The convolutional network: every big-batch method for 3 seeds.
  $bin --task cnn --data "$fashion" --method grid --seeds 3 --rule-seeds 3 \
    --out "$out/cnn.part.csv" > "$out/cnn.log"
) &
(
  # The perceptron on MNIST: every big-batch method for 3 seeds.
  $bin --task mnist --data "$mnist" --method grid --seeds 3 --rule-seeds 3 \
    --out "$out/mnist.part.csv" > "$out/mnist.log"
  # On all of Fashion-MNIST: every big-batch method for 3 seeds.
  $bin --task mlp --data "$fashion" --method grid --seeds 3 --rule-seeds 3 \
    --out "$out/mlp.part.csv" > "$out/mlp.log"
) &
wait
echo "the comparison took $(( $(date +%s) - start )) s on $(nproc) cores"
head -1 "$out/cnn.part.csv" > "$out/networks.csv"
for f in cnn mnist mlp; do tail -n +2 "$out/$f.part.csv" >> "$out/networks.csv"; done
rm -f "$out"/*.part.csv
$bin --report "$out/networks.csv" --svg "$out"
