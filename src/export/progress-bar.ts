// The export's progress on a terminal: one line, redrawn in place a few times a second, with the
// records scanned, the rate and the subject's records found. Nothing is drawn when the stream is not a
// terminal (a pipe, a file, CI), whose readers want the summary only.
import type { ExportProgress } from './subject-export.js';

const REDRAW_MS = 200;
const BAR_CELLS = 24;
const number = new Intl.NumberFormat('en-US');

/** The progress line for `progress`, `elapsedMs` after the scan began. */
export function progressLine(progress: ExportProgress, elapsedMs: number): string {
  const fraction = progress.total > 0 ? Math.min(1, progress.scanned / progress.total) : 1;
  const filled = Math.round(fraction * BAR_CELLS);
  const rate = elapsedMs > 0 ? Math.round((progress.scanned * 1000) / elapsedMs) : 0;
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(BAR_CELLS - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ` +
    `${number.format(progress.scanned)} records scanned, ${number.format(rate)}/s, ${number.format(progress.found)} of the subject's  (${progress.topic})`
  );
}

export class ProgressBar {
  private readonly startedAt = performance.now();
  private drawnAt = -Infinity;
  private drawn = false;

  constructor(private readonly terminal: NodeJS.WriteStream) {}

  /** A bar on `stream` if it is a terminal, else undefined. */
  static on(stream: NodeJS.WriteStream): ProgressBar | undefined {
    return stream.isTTY ? new ProgressBar(stream) : undefined;
  }

  update(progress: ExportProgress): void {
    const now = performance.now();
    if (now - this.drawnAt < REDRAW_MS) return;
    this.drawnAt = now;
    const line = progressLine(progress, now - this.startedAt);
    // (cut to the terminal's width, so the line never wraps; a terminal that reports none, 0, is not cut)
    const width = this.terminal.columns || 0;
    this.terminal.write(`\r${width > 1 ? line.slice(0, width - 1) : line}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the line, so the summary starts on a clean one. */
  done(): void {
    if (this.drawn) this.terminal.write('\r\x1b[K');
  }
}
