// The operations kit under deploy/: every metric and label that the Prometheus alerting rules and the
// Grafana dashboard query is one that a running encryptor's or decryptor's /metrics serves (scraped
// after records, dead letters and a forget went through both), the runbook links name sections of
// docs/operations.md, and, where promtool is installed, the rules pass `promtool check rules` and their
// unit tests (`promtool test rules`).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Decryptor } from '../../src/decryptor/decryptor.js';
import type { Encryptor } from '../../src/encryptor/encryptor.js';
import { requestForget } from '../../src/encryptor/forget-request.js';
import { startHttpServer, type HttpEndpoints } from '../../src/observability/http-server.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ProcessorMetrics } from '../../src/observability/metrics.js';
import { decryptorSetup, startDecryptor } from '../support/decryptor.js';
import { encryptorSetup, startEncryptor } from '../support/encryptor.js';
import { get } from '../support/http.js';
import { eventually, produce, testKafka } from '../support/kafka.js';
import { repoRoot } from '../support/repo-root.js';

const RULES = 'deploy/prometheus/kafka-shredder-rules.yml';
const RULES_TESTS = 'deploy/prometheus/kafka-shredder-rules.test.yml';
const DASHBOARD = 'deploy/grafana/kafka-shredder-dashboard.json';
/** Labels that Prometheus' scrape adds to every series: not served, but there to select and group by. */
const TARGET_LABELS = new Set(['job', 'instance']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

interface QueryUse {
  /** Metric names as written (a histogram's `_bucket`, `_sum`, `_count` included), each with the labels its matchers name. */
  selectors: { name: string; labels: string[] }[];
  /** Labels of `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`. */
  grouping: string[];
}

/**
 * The metrics and labels a PromQL expression uses. Enough PromQL for the expressions written here:
 * string literals only inside matchers, no subqueries' inner steps beyond `[...]`, which is dropped.
 */
function queryUse(expr: string): QueryUse {
  const grouping: string[] = [];
  const rest = expr
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery windows: 5m, $__rate_interval
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _keyword: string, labels: string) => {
      grouping.push(...labels.split(',').map((l) => l.trim()).filter((l) => l !== ''));
      return ' ';
    });
  const selectors: QueryUse['selectors'] = [];
  const selector = /([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})?/g;
  let match: RegExpExecArray | null;
  while ((match = selector.exec(rest)) !== null) {
    const [whole, name, matchers] = match;
    const before = rest[match.index - 1];
    if (before !== undefined && /[A-Za-z0-9_.$]/.test(before)) continue; // (inside a number or a $variable)
    const after = rest.slice(match.index + whole.length);
    if (matchers === undefined && /^\s*\(/.test(after)) continue; // a function or an aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    const labels = matchers === undefined ? [] : [...matchers.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"/g)].map((m) => m[1]);
    selectors.push({ name, labels });
  }
  return { selectors, grouping };
}

/** The `expr` of every rule in a Prometheus rules file: a one-line value or a `|` block. */
function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split('\n');
  const exprs: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(lines[i]);
    if (!m) continue;
    if (m[2] !== '|' && m[2] !== '>') {
      exprs.push(m[2].replace(/^'(.*)'$|^"(.*)"$/, '$1$2'));
      continue;
    }
    const block: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > m[1].length)) block.push(lines[++i].trim());
    exprs.push(block.join('\n').trim());
  }
  return exprs;
}

interface Served {
  /** Metric names from the exposition's `# TYPE` lines, with their types. */
  types: Map<string, string>;
  /** Labels seen on each metric's samples (a histogram's under its base name). */
  labels: Map<string, Set<string>>;
}

function parseExposition(text: string, served: Served): void {
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) served.types.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (!sample) continue;
    let name = sample[1];
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (base !== name && served.types.get(base) === 'histogram') name = base;
    const labels = served.labels.get(name) ?? new Set<string>();
    for (const m of (sample[3] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) labels.add(m[1]);
    served.labels.set(name, labels);
  }
}

/** The name a query's metric is served under: a histogram's series map to the histogram. */
function servedName(name: string, served: Served): string | undefined {
  if (served.types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && served.types.get(base) === 'histogram' ? base : undefined;
}

/** GitHub's anchor of a Markdown heading. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');

function promtool(args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd: repoRoot(), encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const hasPromtool = () => spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;

describe('operations kit', function () {
  this.timeout(180_000);
  const rulesText = readFileSync(join(repoRoot(), RULES), 'utf8');
  const dashboard = JSON.parse(readFileSync(join(repoRoot(), DASHBOARD), 'utf8'));
  const dashboardPanels: { title: string; type: string; datasource?: { uid: string }; targets?: { expr: string; datasource?: { uid: string } }[] }[] = dashboard.panels;

  it('reads metrics and labels out of PromQL', () => {
    expect(queryUse('histogram_quantile(0.99, sum by (le, topic) (rate(shredder_batch_seconds_bucket{job=~"$job", processor="a{b}"}[$__rate_interval])))')).to.deep.equal({
      selectors: [{ name: 'shredder_batch_seconds_bucket', labels: ['job', 'processor'] }],
      grouping: ['le', 'topic'],
    });
    expect(queryUse('time() - x_seconds > ignoring (partition) group_left 0.5 * y_seconds offset 5m')).to.deep.equal({
      selectors: [{ name: 'x_seconds', labels: [] }, { name: 'y_seconds', labels: [] }],
      grouping: ['partition'],
    });
    expect(queryUse('count without (id) (a > 0) > 1 unless rate(b_total[15m]) > 1e3').selectors.map((s) => s.name)).to.deep.equal(['a', 'b_total']);
    expect(ruleExpressions('- alert: A\n  expr: up == 0\n  for: 1m\n- alert: B\n  expr: |\n    a\n    and b\n  for: 2m\n')).to.deep.equal(['up == 0', 'a\nand b']);
  });

  it('queries only metrics and labels that the encryptor and the decryptor serve on /metrics', async () => {
    const kafka: Kafka = testKafka();
    // a long erasure deadline: the forget below stays pending (its segment-roll marker half an hour away)
    const encrypt = encryptorSetup({ SHREDDER_ERASURE_DEADLINE_MS: String(3_600_000) });
    const decrypt = decryptorSetup(encrypt);
    const silent = createLogger('silent');
    const running: { processor: Encryptor | Decryptor; http: HttpEndpoints }[] = [];
    try {
      for (const start of [() => startEncryptor(encrypt), () => startDecryptor(decrypt)]) {
        const processor = await start();
        running.push({ processor, http: await startHttpServer(0, processor, silent, '127.0.0.1') });
      }
      for (const { http } of running) await eventually('/readyz 200', async () => (await get(http.port, '/readyz')).status === 200, 60_000);

      await produce(kafka, encrypt.input, [
        ...Array.from({ length: 12 }, (_, i) => ({ key: `user-${i % 4}`, value: `event-${i}` })),
        { key: null, value: 'no subject' }, // dead-lettered by the encryptor
      ]);
      await produce(kafka, encrypt.output, [{ key: 'user-9', value: 'not an envelope' }]); // dead-lettered by the decryptor
      await requestForget(kafka, [encrypt.input], Buffer.from('user-0'));

      const [encryptor, decryptor] = running;
      const value = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      const scrapes = await eventually('both processors counted the records, dead letters and the forget', async () => {
        const [e, d] = await Promise.all([get(encryptor.http.port, '/metrics'), get(decryptor.http.port, '/metrics')]).then((r) => r.map((x) => x.body));
        const done = value(e, 'shredder_records_dead_lettered_total') === 1
          && value(e, 'shredder_forget_requests_total') === 1
          && value(e, 'shredder_erasure_pending_since_timestamp_seconds') > 0
          && value(d, 'shredder_records_dead_lettered_total') === 1
          && value(d, 'shredder_forget_requests_total') === 1
          && value(d, 'shredder_records_out_total') >= 12;
        return done ? [e, d] : undefined;
      }, 60_000, 500);

      const served: Served = { types: new Map(), labels: new Map() };
      for (const text of scrapes) parseExposition(text, served);
      // a metric without a sample (no task fault, no rotation, no re-wrapper pass over the stores since they
      // were filled: it comes a minute later) is checked against the labels it declares
      const unsampled: string[] = [];
      const labelsOf = (name: string): Set<string> => {
        const seen = served.labels.get(name);
        if (seen) return seen;
        unsampled.push(name);
        const declared = new Set<string>(['processor']);
        for (const { processor } of running) {
          const metric = (processor.metrics as ProcessorMetrics).registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined;
          for (const l of metric?.labelNames ?? []) declared.add(l);
        }
        return declared;
      };

      const queries: { where: string; expr: string }[] = [
        ...ruleExpressions(rulesText).map((expr, i) => ({ where: `${RULES} rule ${i + 1}`, expr })),
        ...dashboardPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${DASHBOARD} panel "${p.title}"`, expr: t.expr }))),
      ];
      expect(ruleExpressions(rulesText)).to.have.length(rulesText.match(/^\s*- alert:/gm)!.length);
      expect(queries.length).to.be.greaterThan(20);
      const problems: string[] = [];
      const used = new Set<string>();
      for (const { where, expr } of queries) {
        const { selectors, grouping } = queryUse(expr);
        if (selectors.length === 0) problems.push(`${where}: no metric found in ${expr}`);
        const available = new Set<string>(TARGET_LABELS);
        for (const { name, labels } of selectors) {
          const metric = servedName(name, served);
          if (metric === undefined) {
            problems.push(`${where}: ${name} is not served`);
            continue;
          }
          used.add(metric);
          const has = labelsOf(metric);
          for (const l of has) available.add(l);
          for (const l of labels) if (!has.has(l) && !TARGET_LABELS.has(l)) problems.push(`${where}: ${name} has no label ${l}`);
        }
        for (const l of grouping) if (!available.has(l)) problems.push(`${where}: grouping by ${l}, a label none of its metrics has`);
      }
      expect(problems, problems.join('\n')).to.deep.equal([]);
      if (unsampled.length > 0) console.log(`      (no samples of ${[...new Set(unsampled)].join(', ')} in this run: their labels checked as declared)`);
      // what each alert is about is queried
      for (const name of ['shredder_consumer_lag', 'shredder_records_dead_lettered_total', 'shredder_partition_faults_total', 'shredder_erasure_pending_since_timestamp_seconds', 'shredder_erasure_deadline_seconds', 'shredder_keys_by_master_key', 'shredder_keys_rewrapped_total', 'shredder_batch_seconds', 'process_cpu_seconds_total']) {
        expect([...used], name).to.include(name);
      }
    } finally {
      for (const { processor, http } of running.reverse()) {
        await http.close();
        await processor.stop();
      }
    }
  });

  it('gives every alert a severity, a for:, a summary and a description, and a runbook naming a section of docs/operations.md', () => {
    const headings = new Set(readFileSync(join(repoRoot(), 'docs/operations.md'), 'utf8').split('\n').filter((l) => /^#{1,4} /.test(l)).map((l) => anchor(l.replace(/^#+ /, ''))));
    const alerts = rulesText.split(/^\s*- alert:/m).slice(1);
    expect(alerts.length).to.be.at.least(5);
    for (const alert of alerts) {
      const name = alert.split('\n')[0].trim();
      expect(alert, name).to.match(/^\s+for: \d+[smh]$/m);
      expect(alert, name).to.match(/^\s+severity: (warning|critical)$/m);
      expect(alert, name).to.match(/^\s+summary: /m);
      expect(alert, name).to.match(/^\s+description: .*Runbook: docs\/operations\.md, /m);
      const runbook = /^\s+runbook: "docs\/operations\.md#([^"]+)"$/m.exec(alert)?.[1];
      expect(runbook, name).to.be.a('string');
      expect([...headings], `${name}: runbook #${runbook}`).to.include(runbook);
    }
    expect([...headings]).to.include('alerts-and-dashboard');
  });

  it('makes every dashboard panel query the ${DS_PROMETHEUS} data source variable', () => {
    expect(dashboard.schemaVersion).to.be.at.least(39);
    expect(dashboard.templating.list.find((v: { name: string }) => v.name === 'DS_PROMETHEUS')).to.include({ type: 'datasource', query: 'prometheus' });
    const queried = dashboardPanels.filter((p) => p.type !== 'row');
    expect(queried.length).to.be.at.least(10);
    for (const panel of queried) {
      expect(panel.datasource?.uid, panel.title).to.equal('${DS_PROMETHEUS}');
      expect(panel.targets?.length, panel.title).to.be.greaterThan(0);
      for (const target of panel.targets!) expect(target.datasource?.uid, panel.title).to.equal('${DS_PROMETHEUS}');
    }
    expect(new Set(dashboard.panels.map((p: { id: number }) => p.id)).size).to.equal(dashboard.panels.length);
  });

  it('passes promtool check rules', function () {
    if (!hasPromtool()) {
      console.log('      promtool is not on PATH (Debian package prometheus): the rules file is not checked by it');
      this.skip();
    }
    const { status, output } = promtool(['check', 'rules', RULES]);
    expect(status, output).to.equal(0);
    expect(output).to.match(/SUCCESS: \d+ rules found/);
  });

  it('passes its promtool unit tests: the dead-letter, task-failing and other alerts fire on the series fed to them', function () {
    if (!hasPromtool()) {
      console.log('      promtool is not on PATH (Debian package prometheus): the rules\' unit tests do not run');
      this.skip();
    }
    const tests = readFileSync(join(repoRoot(), RULES_TESTS), 'utf8');
    for (const alert of ['KafkaShredderDeadLetters', 'KafkaShredderTaskCannotOpen']) expect(tests).to.match(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`));
    const { status, output } = promtool(['test', 'rules', RULES_TESTS]);
    expect(status, output).to.equal(0);
    expect(output).to.contain('SUCCESS');
  });
});
