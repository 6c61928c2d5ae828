#!/usr/bin/env bash
side=$1; port=$2
redis-server --port $port --save "" --appendonly no --daemonize yes >/dev/null
sleep 0.3
export URL=redis://127.0.0.1:$port/0
cd /tmp/cmdstat
/tmp/venv-$side/bin/python -m taskmanager worker app:manager -c 4 > worker-$side.log 2>&1 &
W=$!
sleep 1.5
redis-cli -p $port CONFIG RESETSTAT >/dev/null
/tmp/venv-$side/bin/python - <<'PY'
import app, time
app.manager.start_thread()
t=time.monotonic()
hs=[app.manager.add_task({"method": app.job, "args": [i]}) for i in range(2000)]
for h in hs: h.result(timeout=30)
print("took", round(time.monotonic()-t,2))
app.manager.shutdown()
PY
redis-cli -p $port INFO commandstats | grep -v "^#" | awk -F'[:,=]' '{print $1, $3, $5}' | sort -k2 -n -r | head -15
kill $W; wait $W 2>/dev/null
redis-cli -p $port shutdown nosave >/dev/null 2>&1
