/**
 * The idle lock and the activity ping.
 *
 * `IdleWatcher.input()` is called on every user input. It reports activity
 * to the core at most once per `pingMs`, and fires `onIdle` after
 * `idleMs` without input. The clock and timers are injectable for tests.
 */
export interface IdleOptions {
  idleMs: number;
  pingMs?: number;
  onIdle: () => void;
  onActivity: () => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export class IdleWatcher {
  private idleMs: number;
  private readonly pingMs: number;
  private readonly onIdle: () => void;
  private readonly onActivity: () => void;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private lastPing = -Infinity;
  private lastInput: number;
  private timer: unknown = null;
  private running = false;

  constructor(o: IdleOptions) {
    this.idleMs = o.idleMs;
    this.pingMs = o.pingMs ?? 30_000;
    this.onIdle = o.onIdle;
    this.onActivity = o.onActivity;
    this.now = o.now ?? (() => Date.now());
    this.setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = o.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.lastInput = this.now();
  }

  start(): void {
    this.running = true;
    this.lastInput = this.now();
    this.schedule(this.idleMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  setIdleMs(ms: number): void {
    this.idleMs = ms;
    if (this.running) this.schedule(Math.max(0, this.lastInput + ms - this.now()));
  }

  /** The user did something. */
  input(): void {
    if (!this.running) return;
    const now = this.now();
    this.lastInput = now;
    if (now - this.lastPing >= this.pingMs) {
      this.lastPing = now;
      this.onActivity();
    }
  }

  private schedule(ms: number): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => this.check(), ms);
  }

  private check(): void {
    this.timer = null;
    if (!this.running) return;
    const left = this.lastInput + this.idleMs - this.now();
    if (left <= 0) {
      this.running = false;
      this.onIdle();
    } else {
      this.schedule(left);
    }
  }
}
