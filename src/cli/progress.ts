/**
 * @module cli/progress — progress of long CLI work on stderr: one line per step, or one updating
 * line on a terminal; ANSI colours only when stderr is a TTY and NO_COLOR is unset; silent with
 * `--quiet`. Results go to stdout, never through here.
 */

/** Where progress goes and how it looks. */
export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean };
  /** Default process.env (NO_COLOR). */
  env?: NodeJS.ProcessEnv;
  /** Print nothing (`--quiet`). */
  quiet?: boolean;
  /** Clock in epoch ms. Default Date.now. */
  now?: () => number;
  /** Without a TTY, an unchanged `update` is printed again after this long. Default 30 s. */
  heartbeatMs?: number;
  /** Without a TTY, a changed `update` waits at least this long after the previous line. Default 2 s. */
  minIntervalMs?: number;
}

/** Colours of progress text. */
export type Tone = 'dim' | 'bold' | 'green' | 'yellow' | 'red';

const ANSI: Record<Tone, [string, string]> = {
  dim: ['\x1b[2m', '\x1b[22m'],
  bold: ['\x1b[1m', '\x1b[22m'],
  green: ['\x1b[32m', '\x1b[39m'],
  yellow: ['\x1b[33m', '\x1b[39m'],
  red: ['\x1b[31m', '\x1b[39m'],
};

/** Whether to colour `stream`: a TTY, and NO_COLOR absent or empty (no-color.org). */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

/** `1234567` → `1,234,567`. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Elapsed milliseconds as `850 ms`, `12.3 s` or `4 min 05 s`. */
export function elapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** Prints progress lines prefixed with what is being done (e.g. `sync 3f2a…:`), each with the time elapsed. */
export class Progress {
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly tty: boolean;
  private readonly colour: boolean;
  private readonly quiet: boolean;
  private readonly now: () => number;
  private readonly heartbeatMs: number;
  private readonly minIntervalMs: number;
  private readonly startedAt: number;
  /** An updating line is on screen (TTY) and must be ended before the next line. */
  private open = false;
  private lastText = '';
  private lastAt = -Infinity;

  constructor(
    private readonly prefix: string,
    o: ProgressOptions = {},
  ) {
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.colour = colourEnabled(this.stream, o.env ?? process.env);
    this.quiet = o.quiet ?? false;
    this.now = o.now ?? Date.now;
    this.heartbeatMs = o.heartbeatMs ?? 30_000;
    this.minIntervalMs = o.minIntervalMs ?? 2000;
    this.startedAt = this.now();
  }

  /** `text` in `tone` when colours are on; as is otherwise. */
  paint(tone: Tone, text: string): string {
    if (!this.colour) return text;
    const [on, off] = ANSI[tone];
    return `${on}${text}${off}`;
  }

  /** Milliseconds since this progress began. */
  ms(): number {
    return this.now() - this.startedAt;
  }

  /**
   * One line: `<prefix> <text>  (<elapsed>)`; `ms` overrides the elapsed time shown. On a TTY it
   * replaces an updating line (the final state takes its place).
   */
  line(text: string, ms = this.ms()): void {
    if (this.quiet) return;
    if (this.open) this.stream.write('\r\x1b[2K');
    this.open = false;
    this.stream.write(`${this.format(text, ms)}\n`);
  }

  /**
   * A state that changes often (e.g. deliveries left): on a TTY it rewrites one line in place;
   * otherwise it prints a line when the text changed (at most every `minIntervalMs`) and repeats
   * an unchanged one every `heartbeatMs`, so logs show it is still alive.
   */
  update(text: string): void {
    if (this.quiet) return;
    const now = this.now();
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${this.format(text, this.ms())}`);
      this.open = true;
      return;
    }
    const changed = text !== this.lastText;
    if ((changed && now - this.lastAt >= this.minIntervalMs) || now - this.lastAt >= this.heartbeatMs) {
      this.stream.write(`${this.format(text, this.ms())}\n`);
      this.lastText = text;
      this.lastAt = now;
    }
  }

  /** Ends an updating line (TTY) so what follows starts on a fresh line. */
  endUpdate(): void {
    if (this.open) this.stream.write('\n');
    this.open = false;
  }

  private format(text: string, ms: number): string {
    return `${this.paint('bold', this.prefix)} ${text}  ${this.paint('dim', `(${elapsed(ms)})`)}`;
  }
}
