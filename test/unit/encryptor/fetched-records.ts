// Records as a fetch gives them, for the encryptor's batch tests.
import type { KafkaMessage } from 'kafkajs';

export interface RecordSpec {
  subject: string | null;
  value: Buffer | null;
  headers?: Record<string, string>;
  timestamp?: number;
}

/** Records as a fetch gives them: keys and values views of one buffer, side by side. */
export function fetched(specs: RecordSpec[]): KafkaMessage[] {
  const fetch = Buffer.alloc(specs.reduce((n, s) => n + (s.subject?.length ?? 0) + (s.value?.length ?? 0) + 20, 0));
  let at = 0;
  return specs.map((s, i) => {
    const view = (bytes: Buffer | null) => {
      if (bytes === null) return null;
      fetch.set(bytes, at);
      const v = fetch.subarray(at, at + bytes.length);
      at += bytes.length + 10;
      return v;
    };
    const key = view(s.subject === null ? null : Buffer.from(s.subject));
    return { key, value: view(s.value), headers: s.headers ?? {}, timestamp: String(s.timestamp ?? Date.now()), offset: String(i), attributes: 0 } as KafkaMessage;
  });
}
