import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { IdleWatcher } from "./idle";

/** A started watcher with spies for both callbacks, for the test to steer and read. */
function started(idleMs: number) {
  const onIdle = vi.fn();
  const onActivity = vi.fn();
  const w = new IdleWatcher({ idleMs, onIdle, onActivity });
  w.start();
  return { w, onIdle, onActivity };
}

describe("IdleWatcher", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("fires after the idle time without input", () => {
    const { onIdle } = started(60_000);
    vi.advanceTimersByTime(59_999);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onIdle).toHaveBeenCalledOnce();
  });

  it("input postpones the lock", () => {
    const { w, onIdle } = started(60_000);
    vi.advanceTimersByTime(50_000);
    w.input();
    vi.advanceTimersByTime(50_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10_000);
    expect(onIdle).toHaveBeenCalledOnce();
  });

  it("reports activity at most once per 30 s", () => {
    const { w, onActivity } = started(600_000);
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
    const { w, onIdle, onActivity } = started(1_000);
    w.stop();
    w.input();
    vi.advanceTimersByTime(5_000);
    expect(onIdle).not.toHaveBeenCalled();
    expect(onActivity).not.toHaveBeenCalled();
  });

  it("a shorter idle time takes effect at once", () => {
    const { w, onIdle } = started(600_000);
    vi.advanceTimersByTime(30_000);
    w.setIdleMs(60_000);
    vi.advanceTimersByTime(30_000);
    expect(onIdle).toHaveBeenCalledOnce();
  });
});
