// The codecs src/kafka/compression.ts registers in kafkajs: round trips of several sizes, and frames
// written and read by the zstd and lz4 command-line tools (when installed), including the frames
// without a content size that a stream (a pipe, or Java's zstd-jni) writes.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs, { CompressionTypes } from 'kafkajs';
import { compressionType, type Codec } from '../../../src/kafka/compression.js';
import { repoRoot } from '../../support/repo-root.js';

const { CompressionCodecs } = kafkajs;
type Registered = CompressionTypes.GZIP | CompressionTypes.Snappy | CompressionTypes.LZ4 | CompressionTypes.ZSTD;
const codec = (type: Registered): Codec => CompressionCodecs[type]();
const compress = (type: Registered, bytes: Buffer) => codec(type).compress({ buffer: bytes });

/** JSON lines, as plaintext records are: compressible. */
function jsonLines(bytes: number): Buffer {
  const lines: string[] = [];
  for (let i = 0, size = 0; size < bytes; i++) {
    const text = `{"event":${i},"user":"user-${i % 97}","email":"person${i % 97}@example.org"}\n`;
    lines.push(text);
    size += text.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

const inputs: [string, () => Buffer][] = [
  ['0 bytes', () => Buffer.alloc(0)],
  ['1 byte', () => Buffer.from([0x2a])],
  ['100 KB random', () => randomBytes(100 * 1024)],
  ['1 MB compressible', () => jsonLines(1024 * 1024)],
];

/** The bytes again, at an offset inside a larger buffer: kafkajs hands a codec a slice of the fetch response. */
function inLargerBuffer(bytes: Buffer): Buffer {
  const larger = Buffer.alloc(bytes.length + 100, 0xee);
  bytes.copy(larger, 37);
  return larger.subarray(37, 37 + bytes.length);
}

/** Runs a command-line tool with `input` on a pipe; undefined when the tool is not installed. */
function tool(command: string, args: string[], input?: Buffer): Buffer | undefined {
  const run = spawnSync(command, args, { input, maxBuffer: 64 * 1024 * 1024 });
  if (run.error) return undefined;
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${run.status}: ${run.stderr}`);
  return run.stdout;
}

describe('compression codecs (snappy, lz4, zstd; and kafkajs gzip)', () => {
  const codecs: [string, Registered][] = [
    ['gzip', CompressionTypes.GZIP],
    ['snappy', CompressionTypes.Snappy],
    ['lz4', CompressionTypes.LZ4],
    ['zstd', CompressionTypes.ZSTD],
  ];

  for (const [name, type] of codecs) {
    for (const [size, make] of inputs) {
      it(`${name} round-trips ${size} to a Buffer of the same bytes`, async () => {
        const bytes = make();
        const compressed = await compress(type, bytes);
        expect(Buffer.isBuffer(compressed), 'compressed: a Buffer (kafkajs writes it with Buffer methods)').to.equal(true);
        if (size === '1 MB compressible') expect(compressed.length).to.be.lessThan(bytes.length / 3);
        const restored = await codec(type).decompress(inLargerBuffer(compressed));
        expect(Buffer.isBuffer(restored), 'decompressed: a Buffer (kafkajs reads records from it with Buffer methods)').to.equal(true);
        expect(restored.equals(bytes)).to.equal(true);
      });
    }
  }

  it('maps each KAFKA_COMPRESSION name to its kafkajs compression type', () => {
    expect(['none', 'gzip', 'snappy', 'lz4', 'zstd'].map((n) => compressionType(n as 'none'))).to.deep.equal([
      CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD,
    ]);
  });

  for (const [entry, module] of [['the CLI', 'dist/src/cli/main.js'], ['the library entry', 'dist/src/index.js']]) {
    it(`${entry} registers the codecs when it is imported (in a fresh process)`, () => {
      const script = `await import('./${module}'); const { CompressionCodecs } = (await import('kafkajs')).default;
        for (const type of [2, 3, 4]) await CompressionCodecs[type]().decompress(await CompressionCodecs[type]().compress({ buffer: Buffer.from('x') }));`;
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot(), encoding: 'utf8' });
      expect(run.stderr).to.equal('');
      expect(run.status).to.equal(0);
    });
  }

  it('keeps a codec an application registered before the module was loaded', async () => {
    const own = CompressionCodecs[CompressionTypes.LZ4];
    const applications: Codec = { compress: async () => Buffer.alloc(0), decompress: async () => Buffer.alloc(0) };
    CompressionCodecs[CompressionTypes.LZ4] = () => applications;
    try {
      await import(`../../../src/kafka/compression.js?reloaded=${Date.now()}`); // (evaluated once more)
      expect(codec(CompressionTypes.LZ4)).to.equal(applications);
    } finally {
      CompressionCodecs[CompressionTypes.LZ4] = own;
    }
  });

  it('writes LZ4 frames as Kafka does: independent 64 KiB blocks (Java refuses dependent ones)', async () => {
    const frame = await compress(CompressionTypes.LZ4, jsonLines(300 * 1024));
    expect(frame.subarray(0, 7).toString('hex')).to.equal('04224d18604082'); // magic, FLG (independent blocks), BD (64 KiB), HC
  });

  describe('frames of the command-line tools', function () {
    const data = jsonLines(700 * 1024);
    let file: string;
    before(() => {
      file = join(mkdtempSync(join(tmpdir(), 'codec-frames-')), 'data.jsonl');
      writeFileSync(file, data);
    });

    /** The tool's output, or skips the test when the tool is not installed. */
    function run(context: Mocha.Context, command: string, args: string[], input?: Buffer): Buffer {
      const out = tool(command, args, input);
      if (out === undefined) context.skip();
      return out!;
    }

    it('zstd: decodes a frame written from a pipe, which has no content size', async function () {
      const frame = run(this, 'zstd', ['-q', '-c'], data);
      const descriptor = frame[4];
      expect(frame.readUInt32LE(0)).to.equal(0xfd2fb528);
      expect(descriptor >> 6, 'Frame_Content_Size_flag').to.equal(0);
      expect((descriptor >> 5) & 1, 'Single_Segment_flag (else a 1-byte content size)').to.equal(0);
      expect((await codec(CompressionTypes.ZSTD).decompress(frame)).equals(data)).to.equal(true);
    });

    it('zstd: decodes a frame with a content size and a checksum, and two frames one after the other', async function () {
      const frame = run(this, 'zstd', ['-q', '-c', '-19', '--check', file]);
      expect(frame[4] >> 6, 'Frame_Content_Size_flag').to.not.equal(0);
      expect((await codec(CompressionTypes.ZSTD).decompress(frame)).equals(data)).to.equal(true);
      const second = run(this, 'zstd', ['-q', '-c'], Buffer.from('and more'));
      const both = await codec(CompressionTypes.ZSTD).decompress(Buffer.concat([frame, second]));
      expect(both.equals(Buffer.concat([data, Buffer.from('and more')]))).to.equal(true);
    });

    it('zstd: its frames are read back by the zstd tool', async function () {
      const frame = await compress(CompressionTypes.ZSTD, data);
      expect(run(this, 'zstd', ['-q', '-d', '-c'], frame).equals(data)).to.equal(true);
    });

    it('lz4: decodes frames of the default settings (from a pipe), dependent 64 KiB blocks with block checksums, and a content size', async function () {
      for (const args of [['-c'], ['-c', '-BD', '-B4', '-BX'], ['-c', '--content-size', '-9', file]]) {
        const frame = run(this, 'lz4', ['-q', ...args], args.includes(file) ? undefined : data);
        expect((await codec(CompressionTypes.LZ4).decompress(frame)).equals(data), args.join(' ')).to.equal(true);
      }
    });

    it('lz4: its frames (several blocks, some stored) are read back by the lz4 tool', async function () {
      const mixed = Buffer.concat([data, randomBytes(200 * 1024)]); // the random blocks do not shrink: stored
      const frame = await compress(CompressionTypes.LZ4, mixed);
      expect(run(this, 'lz4', ['-q', '-d', '-c'], frame).equals(mixed)).to.equal(true);
    });

    it('lz4: its blocks keep the end-of-block rules at every size (lz4 and Java refuse a last match under 12 bytes from the end)', async function () {
      const patterns = [() => 97, (i: number) => 97 + (i % 3), (i: number) => data[i % data.length]];
      const sizes = [...Array.from({ length: 40 }, (_, i) => i + 1), 65_535, 65_536, 65_537, 2 * 65_536 + 13];
      const inputs = patterns.flatMap((byte) => sizes.map((size) => Buffer.from(Array.from({ length: size }, (_, i) => byte(i)))));
      const frames = await Promise.all(inputs.map((input) => compress(CompressionTypes.LZ4, input)));
      // concatenated frames decode as their concatenation, by the tool and by the codec
      const all = Buffer.concat(inputs);
      expect(run(this, 'lz4', ['-q', '-d', '-c'], Buffer.concat(frames)).equals(all)).to.equal(true);
      expect((await codec(CompressionTypes.LZ4).decompress(Buffer.concat(frames))).equals(all)).to.equal(true);
    });
  });
});
