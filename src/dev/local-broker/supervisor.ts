// The broker runs under a small bash supervisor rather than as a direct child of Node, because Node
// cannot ask the kernel to kill its children when it dies. The supervisor owns the JVM and the data
// folder, and stops both when (a) it gets SIGTERM/SIGINT/SIGHUP from us, (b) its stdin pipe from the
// Node parent closes, which is what happens when the parent dies, even by SIGKILL, or (c) the JVM exits
// on its own. SIGUSR1 kills the JVM (SIGKILL, a crash) and starts it again on the same data folder:
// the broker restart that tests use as a fault. The local schema registry (src/dev/schema-registry/)
// runs under the same script: the "broker" is whatever command the script is given.
// (bash's array expansion, kept out of the template literal's own ${...})
const BROKER_COMMAND = '${broker_command[@]}';

export const SUPERVISOR_SCRIPT = String.raw`
set -u
data_dir=$1; shift
broker_command=("$@")
"${BROKER_COMMAND}" < /dev/null &
broker_pid=$!
restarting=0
restart_broker() {
  restarting=1
  kill -KILL "$broker_pid" 2>/dev/null
  wait "$broker_pid" 2>/dev/null
  "${BROKER_COMMAND}" < /dev/null &
  broker_pid=$!
}
trap restart_broker USR1
stop_broker() {
  trap '' TERM INT HUP
  kill -TERM "$broker_pid" 2>/dev/null
  for _ in $(seq 1 200); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$broker_pid" 2>/dev/null
  wait "$broker_pid" 2>/dev/null
  rm -rf -- "$data_dir"
  exit 0
}
trap stop_broker TERM INT HUP
# explicit <&0: bash gives a background job /dev/null as stdin otherwise
cat <&0 > /dev/null &
parent_watch_pid=$!
while :; do
  wait -n "$broker_pid" "$parent_watch_pid"
  # (a wait cut short by SIGUSR1: wait on for the new JVM)
  if [ "$restarting" = 1 ]; then restarting=0; continue; fi
  break
done
kill "$parent_watch_pid" 2>/dev/null
stop_broker
`;
