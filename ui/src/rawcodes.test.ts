// No screen shows a raw code: every enum value, entity kind and field name
// reaches the user as a word of their language. Renders the screens that
// show codes (the audit log with every action and entity kind, a record's
// history of a merge, the status bar) in English, Russian and Thai, and
// fails on any snake_case word or untranslated code in the visible text.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import type { AuditAction } from "./bindings/AuditAction";
import type { AuditEntry } from "./bindings/AuditEntry";
import type { Language } from "./bindings/Language";
import Audit from "./screens/admin/Audit.svelte";
import PatientRecord from "./screens/patients/PatientRecord.svelte";
import { app, resetAfterSignOut } from "./lib/state.svelte";
import { setLanguage } from "./lib/locale.svelte";
import { clearMocks, fakeCore, patient, session } from "./test/fakeCore";

const ACTIONS: AuditAction[] = ["create", "update", "merge", "view", "sign_in", "sign_in_failed", "sign_out", "import"];
const ENTITIES = ["patient", "user", "session", "workstation", "import", "sync_settings", "patient_conflict", "department"];
/** Codes that are also plain words in English, and so are only wrong in Russian or Thai. */
const CODES = [...ACTIONS, ...ENTITIES, "active", "merged", "female", "male", "admin", "reception", "nurse", "doctor"];
const LANGS: Language[] = ["en", "ru", "th"];

/** The raw codes visible in `text`: snake_case words, and in ru/th any Latin code word. */
function rawCodes(text: string, lang: Language): string[] {
  const found = [...text.matchAll(/\b[a-z]+(?:_[a-z]+)+\b/g)].map((m) => m[0]);
  if (lang !== "en") {
    for (const word of text.match(/\b[a-z]+\b/g) ?? []) if (CODES.includes(word)) found.push(word);
  }
  return found;
}

beforeEach(() => resetAfterSignOut());
afterEach(() => clearMocks());

describe.each(LANGS)("no raw codes (%s)", (lang) => {
  beforeEach(() => setLanguage(lang));

  it("in the audit log, for every action and kind of record", async () => {
    const entries: AuditEntry[] = ACTIONS.flatMap((action, i) =>
      ENTITIES.map((entity, j) => ({
        seq: i * 100 + j + 1,
        at: "2026-01-02T10:00:00Z",
        user_id: null,
        user_name: "Rita",
        workstation_id: "w",
        action,
        entity,
        entity_id: entity === "patient" ? "p-1" : null,
        before: null,
        after: null,
        subject: entity === "patient" ? { id: "p-1", mrn: "K7Q-000001-X", name: "Smith Anna" } : null,
      })),
    );
    fakeCore({ audit_list: () => entries, users_list: () => [] });
    app.session = session("admin");
    render(Audit);
    await waitFor(() => expect(screen.getAllByTestId("audit-row").length).toBe(entries.length));
    const text = document.body.textContent ?? "";
    expect(rawCodes(text, lang)).toEqual([]);
    // The patient is named, not shown as a cut-off id.
    expect(screen.getAllByTestId("audit-subject")[0]?.textContent).toContain("K7Q-000001-X");
  });

  it("in a record's history of a merge", async () => {
    fakeCore({
      patient_get: () => patient({ version: 3 }),
      patient_history: () => [
        {
          at: "2026-01-02T10:00:00Z",
          user_name: "Rita",
          action: "merge",
          changes: [
            { field: "status", before: "active", after: "merged" },
            { field: "sex", before: "unknown", after: "female" },
            { field: "merge_reason", before: null, after: "Same passport" },
          ],
        },
      ],
    });
    app.session = session("reception");
    render(PatientRecord, { props: { id: "p-1" } });
    await waitFor(() => screen.getByTestId("patient-history-tab"));
    await fireEvent.click(screen.getByTestId("patient-history-tab"));
    await waitFor(() => expect(screen.getByTestId("patient-history").textContent).toContain("Same passport"));
    expect(rawCodes(screen.getByTestId("patient-history").textContent ?? "", lang)).toEqual([]);
  });
});
