import { beforeEach, describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { emit } from "@tauri-apps/api/event";
import type { User } from "./bindings/User";
import AdminSection from "./screens/admin/AdminSection.svelte";
import Audit from "./screens/admin/Audit.svelte";
import ImportDialog from "./screens/patients/ImportDialog.svelte";
import MergeDialog from "./screens/patients/MergeDialog.svelte";
import { app, toasts } from "./lib/state.svelte";
import { setLanguage } from "./lib/locale.svelte";
import { fakeCore, patient, reject, session, summary } from "./test/fakeCore";
import { byId, startEachTestClean, type } from "./test/screen";

startEachTestClean();
beforeEach(() => {
  app.session = session("admin");
});

describe("Users", () => {
  it("creates a user and lists it; shows the password rule from the core", async () => {
    const users: User[] = [session("admin").user];
    const core = fakeCore({
      users_list: () => [...users],
      user_create: (a) => {
        const u = a.user as { username: string; display_name: string; role: User["role"]; language: User["language"]; password: string };
        if (u.password.length < 10) reject("validation", [{ field: "password", code: "too_short", message: "" }]);
        const created = { ...session(u.role).user, id: `id-${u.username}`, username: u.username, display_name: u.display_name };
        users.push(created);
        return created;
      },
    });
    render(AdminSection);
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(1));
    await fireEvent.click(byId("user-create"));
    await type("uf-username", "nina");
    await type("uf-display_name", "Nina Nurse");
    await fireEvent.change(byId("uf-role"), { target: { value: "nurse" } });
    await type("uf-password", "short");
    await fireEvent.click(byId("uf-submit"));
    await waitFor(() => expect(byId("uf-error-password").textContent).toBe("At least 10 characters."));
    // After the round trip focus is still in the dialog, and Esc still reaches it.
    await waitFor(() => expect(byId("user-dialog").contains(document.activeElement)).toBe(true));
    await type("uf-password", "Quiet-Harbor-57");
    await fireEvent.click(byId("uf-submit"));
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(2));
    const sent = core.calls.filter((c) => c.cmd === "user_create").at(-1)?.args.user as Record<string, unknown>;
    expect(sent).toMatchObject({ username: "nina", display_name: "Nina Nurse", role: "nurse", language: "en" });
    expect(screen.queryByTestId("uf-username")).toBeNull();
  });
});

describe("Audit", () => {
  it("lists entries with action and entity, expands JSON and verifies the chain", async () => {
    const core = fakeCore({
      users_list: () => [],
      audit_list: () => [
        { seq: 2, at: "2026-01-02T10:00:00Z", user_id: "u", user_name: "Rita", workstation_id: "w", action: "view", entity: "patient", entity_id: "p-1", before: null, after: null, subject: null },
        { seq: 1, at: "2026-01-02T09:00:00Z", user_id: "u", user_name: "Rita", workstation_id: "w", action: "create", entity: "patient", entity_id: "p-1", before: null, after: { family_name: "ใจดี" }, subject: null },
      ],
      audit_verify: () => ({ entries: 2, first_bad_seq: null, problem: null }),
    });
    render(Audit);
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(2));
    const rows = screen.getAllByTestId("audit-row");
    expect(rows.map((r) => [r.dataset.action, r.dataset.entity])).toEqual([
      ["view", "patient"],
      ["create", "patient"],
    ]);
    const filter = core.calls.find((c) => c.cmd === "audit_list")?.args.filter as Record<string, unknown>;
    expect(Object.keys(filter).sort()).toEqual(["action", "before_seq", "entity", "entity_id", "from", "limit", "to", "user_id"]);
    await fireEvent.click(byId("audit-expand"));
    expect(byId("audit-table").textContent).toContain("ใจดี");
    await fireEvent.click(byId("audit-verify"));
    await waitFor(() => expect(byId("audit-verify-result").textContent).toContain("intact"));
  });

  it("takes filter dates in the user's format, Buddhist-era years in Thai, and refuses a non-date", async () => {
    setLanguage("th");
    const core = fakeCore({ users_list: () => [], audit_list: () => [] });
    render(Audit);
    await waitFor(() => expect(core.called("audit_list")).toBe(1));
    expect(byId("audit-filter-from").getAttribute("placeholder")).toBe("วว.ดด.ปปปป");
    await type("audit-filter-from", "01.02.2569");
    await type("audit-filter-to", "31.02.2569");
    await fireEvent.click(byId("audit-apply"));
    await waitFor(() => byId("audit-filter-to-error"));
    expect(core.called("audit_list")).toBe(1);
    await type("audit-filter-to", "03.02.2569");
    await fireEvent.click(byId("audit-apply"));
    await waitFor(() => expect(core.called("audit_list")).toBe(2));
    const filter = core.calls.filter((c) => c.cmd === "audit_list")[1]?.args.filter as { from: string; to: string };
    const from = new Date(filter.from);
    expect([from.getFullYear(), from.getMonth() + 1, from.getDate()]).toEqual([2026, 2, 1]);
    const to = new Date(filter.to);
    expect([to.getFullYear(), to.getMonth() + 1, to.getDate()]).toEqual([2026, 2, 4]);
    setLanguage("en");
  });
});

describe("ImportDialog", () => {
  const refusedRow = { line: 3, field: "birth_date", code: "bad_date", message: "birth_date is not a date" };
  const rejected = "family_name,given_name,birth_date,import_error\nE,F,31.02.1980,birth_date is not a date\n";

  it("checks the file first, imports, says how many were not imported and saves them as CSV", async () => {
    const core = fakeCore({
      import_patients_csv: async (a) => {
        if (a.dryRun) return { rows: 3, imported: 2, errors: [refusedRow], dry_run: true, rejected_csv: rejected };
        await emit("import-progress", { done: 2, bytes_read: 50, bytes_total: 100 });
        return { rows: 3, imported: 2, errors: [refusedRow], dry_run: false, rejected_csv: rejected };
      },
      import_save_rejected: () => "/home/rita/Downloads/p.rejected.csv",
    });
    render(ImportDialog, { props: { onclose: () => {} } });
    const file = new File(["family_name,given_name\nA,B\nC,D\nE,F\n"], "p.csv", { type: "text/csv" });
    await fireEvent.change(byId("import-file"), { target: { files: [file] } });
    await waitFor(() => expect((byId("import-check") as HTMLButtonElement).disabled).toBe(false));
    await fireEvent.click(byId("import-check"));
    await waitFor(() => byId("import-summary"));
    expect(byId("import-summary").textContent).toContain("3 rows read: 2 can be imported, 1 cannot");
    // The field's label and the rule, not the core's English text.
    expect(screen.getAllByTestId("import-error")[0]?.textContent).toContain("Date of birth: Enter a date like");
    await fireEvent.click(byId("import-run"));
    await waitFor(() => expect(byId("import-summary").textContent).toContain("Imported 2 of 3 rows; 1 were not imported"));
    expect(byId("import-summary").classList.contains("warn")).toBe(true);
    expect(toasts.items.some((t) => t.kind === "saved"), "no green tick for a partial import").toBe(false);
    await fireEvent.click(byId("import-save-rejected"));
    await waitFor(() => byId("import-saved-to"));
    expect(byId("import-saved-to").textContent).toContain("/home/rita/Downloads/p.rejected.csv");
    expect(core.calls.find((c) => c.cmd === "import_save_rejected")?.args).toEqual({ csv: rejected, fileName: "p.csv" });
  });

  it("names every missing and unknown column of a wrong header, in Russian too", async () => {
    setLanguage("ru");
    fakeCore({
      import_patients_csv: () =>
        reject("validation", [
          { field: "column.blood_group", code: "unknown_column", message: "x" },
          { field: "column.3", code: "unknown_column", message: "x" },
          { field: "column.given_name", code: "missing_column", message: "x" },
        ]),
    });
    render(ImportDialog, { props: { onclose: () => {} } });
    const file = new File(["family_name,blood_group\nA,B\n"], "p.csv", { type: "text/csv" });
    await fireEvent.change(byId("import-file"), { target: { files: [file] } });
    await waitFor(() => expect((byId("import-check") as HTMLButtonElement).disabled).toBe(false));
    await fireEvent.click(byId("import-check"));
    await waitFor(() => expect(screen.getAllByTestId("import-header-problem").length).toBeGreaterThan(0));
    const problems = screen.getAllByTestId("import-header-problem").map((p) => p.textContent);
    expect(problems).toEqual([
      "«blood_group» — неизвестный столбец.",
      "У столбца 3 неизвестное имя (нет строки заголовков?).",
      "Нет столбца «given_name» (Имя); он обязателен.",
    ]);
    setLanguage("en");
  });
});

describe("MergeDialog", () => {
  it("shows both records side by side, needs a reason, and merges into the kept record", async () => {
    const keep = patient();
    const dup = patient({ id: "p-9", mrn: "K7Q-000009-Z", phones: ["02 555 1234"] });
    let merged: unknown = null;
    const core = fakeCore({
      patient_search: () => [summary(keep), summary(dup)],
      patient_get: () => dup,
      patient_merge: (a) => {
        merged = a;
        return { ...keep, version: 2 };
      },
    });
    render(MergeDialog, { props: { keep, onclose: () => {}, onmerged: () => {} } });
    await type("merge-search", "ใจดี");
    await waitFor(() => expect(screen.getAllByTestId("merge-result")).toHaveLength(1));
    await fireEvent.click(byId("merge-result"));
    await waitFor(() => byId("merge-compare"));
    const differing = screen
      .getAllByTestId("merge-row")
      .filter((r) => r.dataset.differs === "true")
      .map((r) => r.dataset.field);
    expect(differing).toEqual(["phones"]);
    expect(screen.queryByTestId("merge-warning")).toBeNull();
    expect((byId("merge-confirm") as HTMLButtonElement).disabled).toBe(true);
    expect(document.activeElement).toBe(byId("merge-reason"));
    await type("merge-reason", "Registered twice, same passport");
    await fireEvent.click(byId("merge-confirm"));
    await waitFor(() => expect(core.called("patient_merge")).toBe(1));
    expect(merged).toEqual({ keepId: "p-1", mergeId: "p-9", reason: "Registered twice, same passport" });
  });

  it("warns loudly before joining a woman and a boy", async () => {
    const keep = patient({ sex: "female", birth_date: "1977-04-03" });
    const boy = patient({ id: "p-8", mrn: "K7Q-000008-Y", family_name: "Петров", given_name: "Иван", sex: "male", birth_date: "2017-05-01" });
    fakeCore({ patient_search: () => [summary(boy)], patient_get: () => boy });
    render(MergeDialog, { props: { keep, onclose: () => {}, onmerged: () => {} } });
    await type("merge-search", "Петров");
    await waitFor(() => expect(screen.getAllByTestId("merge-result")).toHaveLength(1));
    await fireEvent.click(byId("merge-result"));
    await waitFor(() => byId("merge-warning"));
    const warned = screen.getAllByTestId("merge-warning-item").map((w) => w.dataset.warning);
    expect(warned).toEqual(["sex", "birth_date", "name"]);
  });
});
