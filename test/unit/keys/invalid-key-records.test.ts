// Unreadable keys-topic records: every one counted, each subject logged once, by its reference only.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { INVALID_LOGGED_LIMIT, keysReaderOptions } from '../../../src/keys/invalid-key-records.js';
import { MasterKey } from '../../../src/keys/master-key.js';
import { createLogger, subjectRefFor } from '../../../src/observability/logger.js';
import { ProcessorMetrics } from '../../../src/observability/metrics.js';

function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  const destination = new Writable({
    write(chunk: Buffer, _, done) {
      raw += chunk.toString();
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger('info', destination), lines, raw: () => raw };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('unreadable keys-topic records', () => {
  const master = new MasterKey(randomBytes(32), 1);

  it('are counted each time, per keys topic, partition and reason, and logged once per subject by its reference, never its id', async () => {
    const { logger, lines, raw } = capturedLogger();
    const metrics = new ProcessorMetrics('decrypt', { processMetrics: false });
    const { onInvalid } = keysReaderOptions('keys-t', logger, master, metrics);
    const subject = Buffer.from('jane.doe@example.com');
    onInvalid({ partition: 1, offset: '5', subject, kind: 'length', reason: 'wrapped key must be 74 bytes, got 100' });
    onInvalid({ partition: 1, offset: '9', subject, kind: 'version', reason: 'unknown wrapped key version 0x02' });
    onInvalid({ partition: 2, offset: '3', subject, kind: 'version', reason: 'unknown wrapped key version 0x02' });
    onInvalid({ partition: 0, offset: '4', kind: 'key', reason: 'a keys-topic value under an empty record key (no subject)' });
    await flush();
    const text = await metrics.text();
    expect(text).to.match(/^shredder_keys_topic_invalid_values_total\{topic="keys-t",partition="1",reason="length",processor="decrypt"\} 1$/m);
    expect(text).to.match(/^shredder_keys_topic_invalid_values_total\{topic="keys-t",partition="1",reason="version",processor="decrypt"\} 1$/m);
    expect(text).to.match(/^shredder_keys_topic_invalid_values_total\{topic="keys-t",partition="2",reason="version",processor="decrypt"\} 1$/m);
    expect(text).to.match(/^shredder_keys_topic_invalid_values_total\{topic="keys-t",partition="0",reason="key",processor="decrypt"\} 1$/m);
    // partition 1's subject once (its first reason), partition 2's once, the record without a subject once
    expect(lines.map((l) => [l.partition, l.offset, l.reason])).to.deep.equal([
      [1, '5', 'wrapped key must be 74 bytes, got 100'],
      [2, '3', 'unknown wrapped key version 0x02'],
      [0, '4', 'a keys-topic value under an empty record key (no subject)'],
    ]);
    const ref = subjectRefFor(master)(subject);
    expect(lines[0].subject).to.equal(ref);
    expect(lines[0].msg).to.match(/dead-lettered \(key unavailable\)/);
    expect(lines[2].subject).to.equal(undefined);
    expect(raw()).not.to.contain('jane');
    expect(raw()).not.to.contain(subject.toString('hex'));
    expect(raw()).not.to.contain(subject.toString('base64'));
  });

  it(`stop logging new subjects past ${INVALID_LOGGED_LIMIT}, saying so once, and keep counting`, async () => {
    const { logger, lines } = capturedLogger();
    const metrics = new ProcessorMetrics('encrypt', { processMetrics: false });
    const { onInvalid } = keysReaderOptions('keys-t', logger, master, metrics);
    const total = INVALID_LOGGED_LIMIT + 50;
    for (let i = 0; i < total; i++) onInvalid({ partition: 0, offset: String(i), subject: Buffer.from(`s-${i}`), kind: 'length', reason: 'wrapped key must be 74 bytes, got 1' });
    await flush();
    expect(lines).to.have.length(INVALID_LOGGED_LIMIT + 1);
    expect(lines.at(-1)!.msg).to.match(/no longer logged/);
    expect(await metrics.text()).to.match(new RegExp(`^shredder_keys_topic_invalid_values_total\\{topic="keys-t",partition="0",reason="length",processor="encrypt"\\} ${total}$`, 'm'));
  });
});
