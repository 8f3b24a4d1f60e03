import type { FieldError } from "../bindings/FieldError";
/**
 * Typed wrappers around the core's Tauri commands. Every rejection is turned
 * into an ErrorBody; `session_locked` is also reported to the app shell so it
 * can show the lock screen whatever screen asked.
 */
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AuditEntry } from "../bindings/AuditEntry";
import type { AuditFilter } from "../bindings/AuditFilter";
import type { AuditVerification } from "../bindings/AuditVerification";
import type { ConflictReview } from "../bindings/ConflictReview";
import type { RefusedChange } from "../bindings/RefusedChange";
import type { DuplicateCandidate } from "../bindings/DuplicateCandidate";
import type { ErrorBody } from "../bindings/ErrorBody";
import type { HistoryEntry } from "../bindings/HistoryEntry";
import type { ImportProgress } from "../bindings/ImportProgress";
import type { ImportReport } from "../bindings/ImportReport";
import type { Language } from "../bindings/Language";
import type { NewUser } from "../bindings/NewUser";
import type { Patient } from "../bindings/Patient";
import type { PatientInput } from "../bindings/PatientInput";
import type { PatientSummary } from "../bindings/PatientSummary";
import type { Session } from "../bindings/Session";
import type { SyncStatus } from "../bindings/SyncStatus";
import type { User } from "../bindings/User";
import type { WorkstationInfo } from "../bindings/WorkstationInfo";
import { toErrorBody } from "./errors";

/** An ErrorBody thrown as an exception, so `catch` gets the structured error. */
export class ApiError extends Error {
  readonly body: ErrorBody;
  constructor(body: ErrorBody) {
    super(body.message);
    this.name = "ApiError";
    this.body = body;
  }
  get code() {
    return this.body.code;
  }
}

/** The ErrorBody of anything a command call threw. */
export function errorBody(e: unknown): ErrorBody {
  return e instanceof ApiError ? e.body : toErrorBody(e);
}

type Listener = (body: ErrorBody) => void;
const errorListeners = new Set<Listener>();

/** Called with every command's error (the shell watches for `session_locked`). */
export function onApiError(fn: Listener): () => void {
  errorListeners.add(fn);
  return () => {
    errorListeners.delete(fn);
  };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    const body = toErrorBody(e);
    for (const fn of errorListeners) fn(body);
    throw new ApiError(body);
  }
}

export const api = {
  workstationInfo: () => call<WorkstationInfo>("workstation_info"),
  setupAdmin: (user: NewUser) => call<Session>("setup_admin", { user }),
  newUserProblems: (user: NewUser) => call<FieldError[]>("new_user_problems", { user }),
  signIn: (username: string, password: string) => call<Session>("sign_in", { username, password }),
  signOut: () => call<null>("sign_out"),
  currentSession: () => call<Session | null>("current_session"),
  lockSession: () => call<null>("lock_session"),
  unlock: (password: string) => call<Session>("unlock", { password }),
  activity: () => call<null>("activity"),
  setLanguage: (language: Language) => call<User>("set_language", { language }),

  patientSearch: (query: string, limit = 50) => call<PatientSummary[]>("patient_search", { query, limit }),
  patientCheckDuplicates: (input: PatientInput) =>
    call<DuplicateCandidate[]>("patient_check_duplicates", { input }),
  patientRegister: (input: PatientInput) => call<Patient>("patient_register", { input }),
  patientGet: (id: string) => call<Patient>("patient_get", { id }),
  patientUpdate: (id: string, baseVersion: number, input: PatientInput) =>
    call<Patient>("patient_update", { id, baseVersion, input }),
  patientHistory: (id: string) => call<HistoryEntry[]>("patient_history", { id }),
  patientMerge: (keepId: string, mergeId: string, reason: string) =>
    call<Patient>("patient_merge", { keepId, mergeId, reason }),

  usersList: () => call<User[]>("users_list"),
  userCreate: (user: NewUser) => call<User>("user_create", { user }),
  userResetPassword: (id: string, password: string) => call<null>("user_reset_password", { id, password }),
  userSetDisabled: (id: string, disabled: boolean) => call<User>("user_set_disabled", { id, disabled }),

  auditList: (filter: AuditFilter) => call<AuditEntry[]>("audit_list", { filter }),
  auditVerify: () => call<AuditVerification>("audit_verify"),

  settingsSetIdleLock: (minutes: number) => call<WorkstationInfo>("settings_set_idle_lock", { minutes }),
  workstationRename: (name: string) => call<WorkstationInfo>("workstation_rename", { name }),

  demoLoad: () => call<number>("demo_load"),
  importPatientsCsv: (csv: string, dryRun: boolean) => call<ImportReport>("import_patients_csv", { csv, dryRun }),
  importSaveRejected: (csv: string, fileName: string) => call<string>("import_save_rejected", { csv, fileName }),
  onImportProgress: (fn: (p: ImportProgress) => void): Promise<UnlistenFn> =>
    listen<ImportProgress>("import-progress", (e) => fn(e.payload)),

  syncStatus: () => call<SyncStatus>("sync_status"),
  onSyncStatus: (fn: (s: SyncStatus) => void): Promise<UnlistenFn> =>
    listen<SyncStatus>("sync-status", (e) => fn(e.payload)),
  syncEnroll: (serverUrl: string, clinicCode: string, username: string, password: string) =>
    call<null>("sync_enroll", { serverUrl, clinicCode, username, password }),
  conflictsList: () => call<ConflictReview[]>("conflicts_list"),
  conflictResolve: (id: string, keepClient: boolean) => call<null>("conflict_resolve", { id, keepClient }),
  refusedChanges: () => call<RefusedChange[]>("refused_changes"),

  /** The first screen is rendered: show the window (created hidden). */
  uiShow: () => call<null>("ui_show"),
  /** The first screen has painted (for the cold-start benchmark). */
  uiReady: (screen: "sign_in" | "setup" | "shell" | "error", marks: Record<string, number>) =>
    call<null>("ui_ready", { screen, marks }),
};

/** An empty PatientInput (every key present, as the core expects). */
export function emptyPatientInput(): PatientInput {
  return {
    family_name: "",
    given_name: "",
    middle_name: null,
    sex: null,
    birth_date: null,
    estimated_age: null,
    phones: [],
    national_id: null,
    address: null,
    emergency_contact_name: null,
    emergency_contact_phone: null,
    allergies: null,
    notes: null,
  };
}

/** An AuditFilter with every key present. */
export function emptyAuditFilter(): AuditFilter {
  return {
    user_id: null,
    action: null,
    entity: null,
    entity_id: null,
    from: null,
    to: null,
    before_seq: null,
    limit: null,
  };
}
