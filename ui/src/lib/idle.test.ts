import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { IdleWatcher } from "./idle";

describe("IdleWatcher", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("fires after the idle time without input", () => {
    const onIdle = vi.fn();
    const w = new IdleWatcher({ idleMs: 60_000, onIdle, onActivity: () => {} });
    w.start();
    vi.advanceTimersByTime(59_999);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onIdle).toHaveBeenCalledOnce();
  });

  it("input postpones the lock", () => {
    const onIdle = vi.fn();
    const w = new IdleWatcher({ idleMs: 60_000, onIdle, onActivity: () => {} });
    w.start();
    vi.advanceTimersByTime(50_000);
    w.input();
    vi.advanceTimersByTime(50_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10_000);
    expect(onIdle).toHaveBeenCalledOnce();
  });

  it("reports activity at most once per 30 s", () => {
    const onActivity = vi.fn();
    const w = new IdleWatcher({ idleMs: 600_000, onIdle: () => {}, onActivity });
    w.start();
    w.input();
    w.input();
    vi.advanceTimersByTime(29_000);
    w.input();
    expect(onActivity).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(1_000);
    w.input();
    expect(onActivity).toHaveBeenCalledTimes(2);
  });

  it("does nothing once stopped", () => {
    const onIdle = vi.fn();
    const onActivity = vi.fn();
    const w = new IdleWatcher({ idleMs: 1_000, onIdle, onActivity });
    w.start();
    w.stop();
    w.input();
    vi.advanceTimersByTime(5_000);
    expect(onIdle).not.toHaveBeenCalled();
    expect(onActivity).not.toHaveBeenCalled();
  });

  it("a shorter idle time takes effect at once", () => {
    const onIdle = vi.fn();
    const w = new IdleWatcher({ idleMs: 600_000, onIdle, onActivity: () => {} });
    w.start();
    vi.advanceTimersByTime(30_000);
    w.setIdleMs(60_000);
    vi.advanceTimersByTime(30_000);
    expect(onIdle).toHaveBeenCalledOnce();
  });
});
