// The decryptor's third stage (decrypt-batch.ts): every envelope that has its key is opened, in one
// envelope batch per algorithm, its associated data (header || subject [|| 0x00 || path]) laid out in
// one arena; an envelope that fails authentication dead-letters its record. Nothing unauthenticated
// is returned.
import type { AlgorithmId } from '../crypto/index.js';
import { EnvelopeKeys, withAadArena } from '../crypto/envelope-batch.js';
import type { DataKey } from '../keys/master-key.js';
import { aadLength, ENVELOPE_HEADER_BYTES, ENVELOPE_NONCE_AT, writeAadTail } from '../wire/envelope.js';
import type { OpeningBatch, SealedEnvelope } from './opening-batch.js';

/** The envelopes of one algorithm to open in one call (an envelope batch); each distinct key once. */
interface PendingOpens {
  keys: EnvelopeKeys<DataKey, Uint8Array>;
  keyIndexes: number[];
  envelopes: Uint8Array[];
  aadStarts: number[];
  aadLengths: number[];
  sealed: SealedEnvelope[];
}

const keyBytes = (dataKey: DataKey) => dataKey.key;
const pendingOpens = (): PendingOpens => ({ keys: new EnvelopeKeys(keyBytes), keyIndexes: [], envelopes: [], aadStarts: [], aadLengths: [], sealed: [] });

export function openEnvelopes(batch: OpeningBatch): void {
  withAadArena(batch.aadBytes, (aadArena) => openIn(aadArena, batch));
}

function openIn(aadArena: Uint8Array, batch: OpeningBatch): void {
  const { failed, result, context } = batch;
  let aadOffset = 0;
  const toOpen = new Map<AlgorithmId, PendingOpens>();
  for (const sealed of batch.sealed) {
    if (!sealed.key || failed[sealed.index]) continue;
    const { envelope, subject, path } = sealed;
    const length = aadLength(subject.length, path);
    // (the first 22 bytes stay empty: the cipher puts each envelope's own header there)
    writeAadTail(aadArena, subject, path, aadOffset + ENVELOPE_HEADER_BYTES);
    const algorithm = envelope[1] as AlgorithmId;
    let group = toOpen.get(algorithm);
    if (!group) toOpen.set(algorithm, (group = pendingOpens()));
    group.keyIndexes.push(group.keys.indexOf(sealed.key));
    group.envelopes.push(envelope);
    group.aadStarts.push(aadOffset);
    group.aadLengths.push(length);
    group.sealed.push(sealed);
    aadOffset += length;
  }
  for (const [algorithm, group] of toOpen) {
    const started = process.hrtime.bigint();
    const { keyIndexes, envelopes, aadStarts, aadLengths } = group;
    // (a literal, not a spread: a spread object's shape makes every access to it slow)
    const opened = context.ciphers.get(algorithm).openEnvelopes({ prefixBytes: ENVELOPE_NONCE_AT, aad: aadArena, keys: group.keys.keys, keyIndexes, envelopes, aadStarts, aadLengths });
    result.stats.cryptoNs += Number(process.hrtime.bigint() - started);
    for (let k = 0; k < opened.length; k++) {
      const sealed = group.sealed[k];
      sealed.plaintext = opened[k];
      if (!opened[k]) batch.fail(sealed.index, `authentication failed: the ${sealed.path ? 'field' : 'record'} was altered, forged, or moved to another ${sealed.path ? 'field or subject' : 'subject'}`);
    }
  }
}
