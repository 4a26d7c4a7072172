// Misspelled configuration must not pass silently: `SHREDER_ROUTES=...` would otherwise be ignored and
// the processor would run with the default routes. A variable that starts with one of our prefixes but
// is not ours, or that is one edit away from one of ours, is a configuration problem naming the
// closest known variable.
import { VARIABLES } from './variables.js';

const PREFIXES = ['SHREDDER_', 'KAFKA_'];

/**
 * Variables with our prefixes that other software puts into a process's environment, so they are no
 * typos of ours: Kubernetes service links (a Service named `kafka` gives every pod in its namespace
 * KAFKA_SERVICE_HOST, KAFKA_PORT=tcp://..., KAFKA_PORT_9092_TCP_ADDR, ...), recognised by their values
 * too so that a misspelled SHREDDER_..._PORT is still caught, and the variables of Apache Kafka's own
 * launcher scripts (bin/kafka-run-class.sh).
 */
const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$/;
const NUMBER = /^\d{1,5}$/;
const URL = /^(tcp|udp|sctp):\/\/\S+$/;
const FOREIGN: [RegExp, RegExp][] = [
  [/_SERVICE_HOST$/, IP],
  [/_SERVICE_PORT(_[A-Z0-9_]+)?$/, NUMBER],
  [/_PORT(_\d+_(TCP|UDP|SCTP))?$/, URL],
  [/_PORT_\d+_(TCP|UDP|SCTP)_PROTO$/, /^(tcp|udp|sctp)$/],
  [/_PORT_\d+_(TCP|UDP|SCTP)_PORT$/, NUMBER],
  [/_PORT_\d+_(TCP|UDP|SCTP)_ADDR$/, IP],
  [/^KAFKA_(HEAP_OPTS|OPTS|JVM_PERFORMANCE_OPTS|GC_LOG_OPTS|JMX_OPTS|LOG4J_OPTS|DEBUG|HOME|LOG_DIR|CLUSTER_ID)$/, /^/],
];

const isForeign = (name: string, value: string | undefined) => FOREIGN.some(([pattern, valuePattern]) => pattern.test(name) && valuePattern.test(value ?? ''));

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps each count one. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known variable closest to `name`, and how far it is. */
export function closestVariable(name: string, known: readonly string[] = VARIABLES.map((v) => v.name)): { name: string; distance: number } {
  let best = { name: known[0], distance: Number.POSITIVE_INFINITY };
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < best.distance) best = { name: candidate, distance };
  }
  return best;
}

/** One problem per variable of `env` that looks like ours but is not (see the file comment). */
export function unknownVariableProblems(env: NodeJS.ProcessEnv): string[] {
  const known = VARIABLES.map((v) => v.name);
  const knownSet = new Set(known);
  const problems: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (knownSet.has(name) || isForeign(name, env[name])) continue;
    const upper = name.toUpperCase();
    const closest = closestVariable(upper, known);
    const prefixed = PREFIXES.some((prefix) => upper.startsWith(prefix));
    // (a lower-case spelling of one of ours is a typo too: environment names are case-sensitive)
    if (!prefixed && closest.distance > 1 && !knownSet.has(upper)) continue;
    const hint = closest.distance <= 3 || knownSet.has(upper) ? `did you mean ${closest.name}?` : `the closest known variable is ${closest.name}`;
    problems.push(`${name}: not a kafka-shredder variable; ${hint} (kafka-shredder --help lists them all)`);
  }
  return problems;
}
