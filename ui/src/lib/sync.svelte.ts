/**
 * The sync status shown in the status bar: fetched once, then kept current
 * by the core's `sync-status` event (sent on every change of the engine's
 * status), with a slow poll as a safety net should an event be missed.
 */
import type { SyncStatus } from "../bindings/SyncStatus";
import type { UnlistenFn } from "@tauri-apps/api/event";
import { api } from "./api";

export const sync = $state<{ status: SyncStatus | null }>({ status: null });

/** How often the status is asked for besides the events. */
export const SYNC_POLL_MS = 15_000;

/**
 * Starts following the status; returns the function that stops it. Errors
 * (signed out, locked) only leave the last status shown.
 */
export function watchSync(pollMs = SYNC_POLL_MS): () => void {
  let stopped = false;
  let unlisten: UnlistenFn | null = null;
  const refresh = () =>
    api.syncStatus().then(
      (s) => {
        if (!stopped) sync.status = s;
      },
      () => {},
    );
  void refresh();
  void api
    .onSyncStatus((s) => {
      if (!stopped) sync.status = s;
    })
    .then(
      (u) => {
        if (stopped) u();
        else unlisten = u;
      },
      () => {},
    );
  const timer = setInterval(() => void refresh(), pollMs);
  return () => {
    stopped = true;
    clearInterval(timer);
    try {
      const r: unknown = unlisten?.();
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // the event bridge is gone already (window closing, tests)
    }
  };
}

/** A JSON value from a conflict as a person reads it. */
export function displayValue(v: unknown): string {
  if (v === null || v === undefined || v === "") return "";
  if (Array.isArray(v)) return v.map(displayValue).filter(Boolean).join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
