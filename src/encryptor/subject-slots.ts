// The encryptor's per-subject state within a batch: a subject's key is looked up once, at its first
// record to seal, and kept current as the batch changes it (a forget, a new key), so the subject's
// later records take it without looking it up again. Slots are kept from batch to batch for one
// partition's keys (their batches are encrypted one at a time), so a subject seen before costs one map
// lookup a record and no allocation; a slot's state is only ever that of the batch that last took it.
import type { DataKey } from '../keys/master-key.js';
import type { PartitionKeys } from '../keys/partition-keys.js';

export interface SubjectSlot {
  readonly id: string;
  /** The batch the state below belongs to. */
  batch: number;
  /** Records of that batch with this subject, counted while it is planned. */
  records: number;
  /** Whether key and forgottenAt hold the subject's state (looked up, or set by the batch). */
  looked: boolean;
  key: DataKey | undefined;
  forgottenAt: number | undefined;
  /** key's index in its envelope batch (-1: not added yet). */
  keyIndex: number;
}

/** Bound of the slots kept; past it, the next batch starts from none (they are only a cache). */
const SLOTS_LIMIT = 65_536;

export class SubjectSlots {
  private readonly slots = new Map<string, SubjectSlot>();
  private batches = 0;

  /** Starts a batch: every slot's state is stale until the batch takes it. Returns the batch's number. */
  beginBatch(): number {
    if (this.slots.size >= SLOTS_LIMIT) this.slots.clear();
    return ++this.batches;
  }

  /** The slot of subject `id` (its subjectId), with the state of `batch`: reset if an earlier batch had it. */
  take(id: string, batch: number): SubjectSlot {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = { id, batch, records: 0, looked: false, key: undefined, forgottenAt: undefined, keyIndex: -1 };
      this.slots.set(id, slot);
    } else if (slot.batch !== batch) {
      renew(slot, batch);
    }
    return slot;
  }
}

/** Resets a slot for `batch`, e.g. when a batch that overlapped this one used it meanwhile. */
export function renew(slot: SubjectSlot, batch: number): void {
  slot.batch = batch;
  slot.records = 0;
  slot.looked = false;
  slot.key = undefined;
  slot.forgottenAt = undefined;
  slot.keyIndex = -1;
}

const slotsByKeys = new WeakMap<PartitionKeys, SubjectSlots>();

/** The slots of one partition's keys. */
export function subjectSlots(keys: PartitionKeys): SubjectSlots {
  let slots = slotsByKeys.get(keys);
  if (!slots) slotsByKeys.set(keys, (slots = new SubjectSlots()));
  return slots;
}
