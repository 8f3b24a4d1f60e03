/**
 * Start-up marks for the cold-start benchmark: when each step of the UI's
 * start finished, in epoch ms. The core keeps them only when the benchmark
 * asks (CLINIC_READY_FILE); otherwise sending them costs one small call.
 */

const marks: Record<string, number> = {};

function epochMs(relative: number): number {
  return Math.round((performance.timeOrigin + relative) * 10) / 10;
}

/** Notes that the step `name` finished now. */
export function mark(name: string): void {
  if (typeof performance === "undefined") return;
  marks[name] = epochMs(performance.now());
}

/** The marks so far, with the page's own load timings. */
export function startupMarks(): Record<string, number> {
  if (typeof performance === "undefined") return { ...marks };
  const out: Record<string, number> = { navigation_start: epochMs(0) };
  const nav = performance.getEntriesByType?.("navigation")[0] as PerformanceNavigationTiming | undefined;
  if (nav) {
    out.html_loaded = epochMs(nav.responseEnd);
    out.dom_interactive = epochMs(nav.domInteractive);
    out.dom_content_loaded = epochMs(nav.domContentLoadedEventEnd);
  }
  for (const p of performance.getEntriesByType?.("paint") ?? []) {
    out[p.name.replace(/-/g, "_")] = epochMs(p.startTime);
  }
  return { ...out, ...marks };
}

/** Calls `fn` once the current DOM has been painted: after the next frame's
 * rendering (a task queued from requestAnimationFrame runs after that paint). */
export function afterPaint(fn: () => void): void {
  requestAnimationFrame(() => {
    mark("animation_frame");
    setTimeout(() => {
      mark("after_paint");
      fn();
    }, 0);
  });
}
