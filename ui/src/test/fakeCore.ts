/**
 * A small stand-in for the Rust core, for component tests: each command is
 * a handler; a handler that throws rejects the invoke with what it threw.
 */
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import type { ErrorBody } from "../bindings/ErrorBody";
import type { Patient } from "../bindings/Patient";
import type { PatientSummary } from "../bindings/PatientSummary";
import type { Permission } from "../bindings/Permission";
import type { Role } from "../bindings/Role";
import type { Session } from "../bindings/Session";
import type { SyncStatus } from "../bindings/SyncStatus";
import type { WorkstationInfo } from "../bindings/WorkstationInfo";

export type Handler = (args: Record<string, unknown>) => unknown;

export interface FakeCore {
  calls: { cmd: string; args: Record<string, unknown> }[];
  called(cmd: string): number;
  on(cmd: string, h: Handler): void;
}

export function fakeCore(handlers: Record<string, Handler> = {}): FakeCore {
  const table = new Map(Object.entries(handlers));
  const calls: FakeCore["calls"] = [];
  mockIPC(
    (cmd, args) => {
      const a = (args ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args: a });
      const h = table.get(cmd);
      if (!h) throw { code: "internal", message: `no fake for ${cmd}`, fields: [] } satisfies ErrorBody;
      return h(a);
    },
    { shouldMockEvents: true },
  );
  return {
    calls,
    called: (cmd) => calls.filter((c) => c.cmd === cmd).length,
    on: (cmd, h) => void table.set(cmd, h),
  };
}

export { clearMocks };

export function reject(code: ErrorBody["code"], fields: ErrorBody["fields"] = []): never {
  throw { code, message: code, fields } satisfies ErrorBody;
}

export const info = (over: Partial<WorkstationInfo> = {}): WorkstationInfo => ({
  id: "0190e4b0-0000-7000-8000-000000000001",
  name: "Reception 1",
  mrn_prefix: "K7Q",
  needs_setup: false,
  is_empty: false,
  idle_lock_minutes: 10,
  connection: "offline",
  ...over,
});

const PERMS: Record<Role, Permission[]> = {
  admin: ["read_demographics", "write_demographics", "merge_patients", "import_patients", "manage_users", "read_audit", "manage_settings"],
  doctor: ["read_demographics", "write_demographics", "merge_patients", "import_patients", "read_clinical", "write_clinical", "record_vitals", "read_imaging"],
  nurse: ["read_demographics", "read_clinical", "record_vitals"],
  reception: ["read_demographics", "write_demographics", "merge_patients", "import_patients"],
  imaging_operator: ["read_demographics", "read_imaging"],
};

export const session = (role: Role, over: Partial<Session["user"]> = {}): Session => ({
  user: {
    id: `user-${role}`,
    username: role,
    display_name: `Test ${role}`,
    role,
    language: "en",
    disabled: false,
    locked_until: null,
    created_at: "2026-01-01T00:00:00Z",
    ...over,
  },
  permissions: PERMS[role],
});

export const patient = (over: Partial<Patient> = {}): Patient => ({
  id: "p-1",
  mrn: "K7Q-000001-4",
  family_name: "ใจดี",
  given_name: "สมชาย",
  middle_name: null,
  sex: "male",
  birth_date: "1980-03-21",
  birth_date_estimated: false,
  phones: ["081 234 5678"],
  national_id: null,
  address: null,
  emergency_contact_name: null,
  emergency_contact_phone: null,
  allergies: null,
  notes: null,
  status: "active",
  merged_into: null,
  version: 1,
  created_at: "2026-01-01T00:00:00Z",
  created_by: "Test reception",
  updated_at: "2026-01-01T00:00:00Z",
  updated_by: "Test reception",
  workstation_id: "w",
  ...over,
});

export const summary = (p: Patient): PatientSummary => ({
  id: p.id,
  mrn: p.mrn,
  family_name: p.family_name,
  given_name: p.given_name,
  middle_name: p.middle_name,
  sex: p.sex,
  birth_date: p.birth_date,
  birth_date_estimated: p.birth_date_estimated,
  phone: p.phones[0] ?? null,
  national_id: p.national_id,
});

export const syncStatus = (over: Partial<SyncStatus> = {}): SyncStatus => ({
  configured: true,
  server_url: "https://clinic.example",
  connection: "offline",
  pending: 0,
  rejected: 0,
  conflicts: 0,
  last_sync_at: null,
  progress: null,
  problem: null,
  tokens_session_only: false,
  ...over,
});
