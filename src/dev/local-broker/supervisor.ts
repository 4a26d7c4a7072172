// The broker runs under a small bash supervisor rather than as a direct child of Node, because Node
// cannot ask the kernel to kill its children when it dies. The supervisor owns the JVM and the data
// folder, and stops both when (a) it gets SIGTERM/SIGINT/SIGHUP from us, (b) its stdin pipe from the
// Node parent closes, which is what happens when the parent dies, even by SIGKILL, or (c) the JVM exits
// on its own. SIGUSR1 kills the JVM (SIGKILL, a crash) and starts it again on the same data folder:
// the broker restart that tests use as a fault. The local schema registry (src/dev/schema-registry/)
// runs under the same script: the "broker" is whatever command the script is given.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

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

/** A command running under the supervisor script: its data folder goes with it, and it with us. */
export class SupervisedProcess {
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
  }

  /**
   * Starts `command` under the supervisor named `name`, its output appended to `logFile`. Its stdin is
   * a pipe, whose end tells the supervisor that we are gone; it is detached, so that a Ctrl-C in the
   * terminal reaches us, not it, and we stop it in order.
   */
  static start(name: string, dataDir: string, command: readonly string[], logFile: string, cwd?: string): SupervisedProcess {
    const out = openSync(logFile, 'a');
    try {
      return new SupervisedProcess(spawn('bash', ['-c', SUPERVISOR_SCRIPT, name, dataDir, ...command], { stdio: ['pipe', out, out], detached: true, cwd }));
    } finally {
      closeSync(out);
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The supervisor's pid (the command is its child), while it runs. */
  get pid(): number | undefined {
    return this.running ? this.child.pid : undefined;
  }

  /** Kills the command (SIGKILL, a crash) and starts it again on the same data folder. */
  crashAndRestart(): void {
    this.child.kill('SIGUSR1');
  }

  /** Stops the command and waits until the supervisor has removed its data folder; safe to call twice. */
  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    await this.exited;
  }
}
