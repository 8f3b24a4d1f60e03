import type { PatientFormModel } from "./patientForm";
import type { Permission } from "../bindings/Permission";
import type { Session } from "../bindings/Session";
import type { WorkstationInfo } from "../bindings/WorkstationInfo";
import type { PatientSummary } from "../bindings/PatientSummary";

export type Section = "patients" | "schedule" | "queue" | "records" | "imaging" | "reports" | "admin";

export type PatientView =
  | { kind: "search" }
  | { kind: "register"; prefill?: Partial<PatientFormModel> }
  | { kind: "record"; id: string }
  | { kind: "edit"; id: string }
  | { kind: "conflicts" }
  | { kind: "refused" };

export interface AppState {
  info: WorkstationInfo | null;
  session: Session | null;
  locked: boolean;
  offerDemo: boolean;
  section: Section;
  patients: PatientView;
  /** The search box's text and results, kept while a record is open. */
  search: { query: string; results: PatientSummary[]; searched: string };
}

export const app = $state<AppState>({
  info: null,
  session: null,
  locked: false,
  offerDemo: false,
  section: "patients",
  patients: { kind: "search" },
  search: { query: "", results: [], searched: "" },
});

export function can(p: Permission): boolean {
  return app.session?.permissions.includes(p) ?? false;
}

export function openPatient(id: string): void {
  app.section = "patients";
  app.patients = { kind: "record", id };
}

export function openConflicts(): void {
  app.section = "patients";
  app.patients = { kind: "conflicts" };
}

export function openRefused(): void {
  app.section = "patients";
  app.patients = { kind: "refused" };
}

export function resetAfterSignOut(): void {
  app.session = null;
  app.locked = false;
  app.offerDemo = false;
  app.section = "patients";
  app.patients = { kind: "search" };
  app.search = { query: "", results: [], searched: "" };
  // Toasts may name patients; the next user should not see them.
  toasts.items.splice(0);
}

export type ToastKind = "saved" | "error" | "info";
export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

export const toasts = $state<{ items: Toast[] }>({ items: [] });
let toastSeq = 0;

export function toast(kind: ToastKind, text: string, ms = kind === "error" ? 8000 : 4000): void {
  const id = ++toastSeq;
  toasts.items.push({ id, kind, text });
  setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  const i = toasts.items.findIndex((t) => t.id === id);
  if (i >= 0) toasts.items.splice(i, 1);
}
