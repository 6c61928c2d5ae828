set -x
for sc in lateness drift throughput-1p fairness timers; do
  for v in before after; do /work/peers-$v --quick --only $sc --json $v-$sc.json > $v-$sc.txt 2>&1; done
done
for v in before after; do /work/peers-$v --only lateness --json $v-lateness-full.json > $v-lateness-full.txt 2>&1; done
for v in before after; do /work/peers-$v --quick --only recurring-cpu --json $v-recurring-cpu.json > $v-recurring-cpu.txt 2>&1; done
cd /work/wt-timers/benches
for v in before after; do
  venv=/work/venv-timers; [ $v = after ] && venv=/work/venv-timers-after
  $venv/bin/python peers.py --quick --only py-recurring-cpu --json /work/bench-timers/$v-py-recurring-cpu.json > /work/bench-timers/$v-py-recurring-cpu.txt 2>&1
  $venv/bin/python peers.py --only py-cancel --json /work/bench-timers/$v-py-cancel.json > /work/bench-timers/$v-py-cancel.txt 2>&1
  $venv/bin/python peers.py --quick --only py-lateness --json /work/bench-timers/$v-py-lateness.json > /work/bench-timers/$v-py-lateness.txt 2>&1
  $venv/bin/python peers.py --quick --only py-drift --json /work/bench-timers/$v-py-drift.json > /work/bench-timers/$v-py-drift.txt 2>&1
done
echo ALLDONE > /work/bench-timers/done
