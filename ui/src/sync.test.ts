import { beforeEach, describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import type { ConflictReview } from "./bindings/ConflictReview";
import SyncStatusBar from "./components/SyncStatusBar.svelte";
import Conflicts from "./screens/patients/Conflicts.svelte";
import RefusedChanges from "./screens/patients/RefusedChanges.svelte";
import type { RefusedChange } from "./bindings/RefusedChange";
import CentralServer from "./screens/admin/CentralServer.svelte";
import { app, toasts } from "./lib/state.svelte";
import { setLanguage } from "./lib/locale.svelte";
import { displayValue, sync, watchSync } from "./lib/sync.svelte";
import { formatRecent } from "./lib/format";
import { emit } from "@tauri-apps/api/event";
import { fakeCore, info, patient, reject, session, summary, syncStatus } from "./test/fakeCore";
import { byId, startEachTestClean, type } from "./test/screen";

startEachTestClean();
beforeEach(() => {
  sync.status = null;
});

describe("SyncStatusBar", () => {
  it("shows local only when no server is configured", () => {
    render(SyncStatusBar, { status: syncStatus({ configured: false, server_url: null }) });
    expect(byId("statusbar-connection").textContent).toContain("Local only");
    expect(screen.queryByTestId("statusbar-pending")).toBeNull();
  });

  it("says all changes are sent when nothing waits", () => {
    render(SyncStatusBar, { status: syncStatus({ pending: 0 }) });
    expect(byId("statusbar-pending").textContent).toContain("All changes sent");
  });

  it("shows online, pending count, last sync time and a conflicts button", async () => {
    let clicked = 0;
    render(SyncStatusBar, {
      status: syncStatus({ connection: "online", pending: 3, conflicts: 2, last_sync_at: "2026-03-01T10:20:30Z" }),
      onconflicts: () => clicked++,
    });
    expect(byId("statusbar-connection").textContent).toContain("Online");
    expect(byId("statusbar-pending").textContent).toContain("3 to send");
    expect(byId("statusbar-last-sync").textContent).toMatch(/Synced .*2026/);
    expect(byId("statusbar-last-sync").title).toMatch(/10|11|12|13/);
    expect(byId("statusbar-conflicts").tagName).toBe("BUTTON");
    expect(byId("statusbar-conflicts").textContent).toContain("Conflicts to review: 2");
    await fireEvent.click(byId("statusbar-conflicts"));
    expect(clicked).toBe(1);
  });

  it("shows the problem, the session-only note and the progress bar", () => {
    const { unmount } = render(SyncStatusBar, {
      status: syncStatus({ problem: { code: "sign_in_needed", message: "x" }, progress: 0.42 }),
    });
    expect(byId("statusbar-problem").textContent).toContain("must sign in while online");
    expect(byId("statusbar-progress").textContent).toContain("42%");
    expect(screen.queryByTestId("statusbar-session-only")).toBeNull();
    unmount();
    render(SyncStatusBar, { status: syncStatus({ tokens_session_only: true }) });
    expect(byId("statusbar-session-only").textContent).toContain("this session only");
    expect(screen.queryByTestId("statusbar-problem")).toBeNull();
  });

  it("says nothing of saved sign-ins on a workstation without a server, and what to do with one", () => {
    const { unmount } = render(SyncStatusBar, { status: syncStatus({ configured: false, tokens_session_only: true }) });
    expect(screen.queryByTestId("statusbar-session-only")).toBeNull();
    unmount();
    render(SyncStatusBar, { status: syncStatus({ tokens_session_only: true }) });
    expect(byId("statusbar-session-only").getAttribute("title")).toContain("install and unlock a keyring");
  });

  it("shows the session-only note and a stalled sync's problem together", () => {
    render(SyncStatusBar, {
      status: syncStatus({ tokens_session_only: true, problem: { code: "sign_in_needed", message: "x" } }),
    });
    expect(byId("statusbar-session-only").textContent).toContain("this session only");
    expect(byId("statusbar-problem").textContent).toContain("must sign in while online");
  });

  it("translates into Russian and Thai", () => {
    setLanguage("ru");
    const { unmount } = render(SyncStatusBar, { status: syncStatus({ problem: { code: "server_unreachable", message: "" } }) });
    expect(byId("statusbar-problem").textContent).toContain("Сервер недоступен");
    unmount();
    setLanguage("th");
    render(SyncStatusBar, { status: syncStatus({ pending: 5 }) });
    expect(byId("statusbar-pending").textContent).toContain("รอส่ง 5");
  });
});

describe("watchSync", () => {
  it("fetches the status, then follows the core's events", async () => {
    fakeCore({ sync_status: () => syncStatus({ pending: 1 }) });
    const stop = watchSync(60_000);
    await waitFor(() => expect(sync.status?.pending).toBe(1));
    await emit("sync-status", syncStatus({ pending: 7 }));
    await waitFor(() => expect(sync.status?.pending).toBe(7));
    stop();
  });
});

/** The patient a conflict or a refused change is about: Anna Ivanova, no phone. */
const anna = (birth_date: string) => summary(patient({ family_name: "Ivanova", given_name: "Anna", sex: "female", birth_date, phones: [] }));

const conflict = (over: Partial<ConflictReview["conflict"]> = {}): ConflictReview => ({
  conflict: {
    id: "c-1",
    patient_id: "p-1",
    field: "family_name",
    base_value: "Ivanov",
    server_value: "Ivanova",
    client_value: "Ivanoff",
    mutation_id: "m-1",
    user_id: "u-1",
    created_at: "2026-03-01T10:00:00Z",
    resolved_at: null,
    ...over,
  },
  patient: anna("1980-03-21"),
});

describe("Conflicts", () => {
  beforeEach(() => {
    app.session = session("reception");
  });

  it("lists each conflict with patient, field and both values, and settles it", async () => {
    let open = [conflict(), conflict({ id: "c-2", field: "phones", server_value: ["081"], client_value: [] })];
    const core = fakeCore({
      conflicts_list: () => open,
      conflict_resolve: (a) => {
        open = open.filter((c) => c.conflict.id !== a.id);
        return null;
      },
    });
    render(Conflicts);
    await waitFor(() => expect(screen.getAllByTestId("conflict")).toHaveLength(2));
    const first = screen.getAllByTestId("conflict")[0]!;
    expect(first.textContent).toContain("Ivanova Anna");
    expect(first.textContent).toContain("K7Q-000001-4");
    expect(screen.getAllByTestId("conflict-field")[0]!.textContent).toBe("Family name");
    expect(screen.getAllByTestId("conflict-server")[0]!.textContent).toBe("Ivanova");
    expect(screen.getAllByTestId("conflict-client")[0]!.textContent).toBe("Ivanoff");
    expect(screen.getAllByTestId("conflict-client")[1]!.textContent).toBe("(empty)");

    await fireEvent.click(screen.getAllByTestId("conflict-use-client")[0]!);
    await waitFor(() => expect(screen.getAllByTestId("conflict")).toHaveLength(1));
    expect(core.calls.find((c) => c.cmd === "conflict_resolve")?.args).toMatchObject({ id: "c-1", keepClient: true });

    await fireEvent.click(byId("conflict-keep-server"));
    await waitFor(() => byId("conflicts-empty"));
    expect(core.calls.filter((c) => c.cmd === "conflict_resolve").at(-1)?.args).toMatchObject({ id: "c-2", keepClient: false });
    expect(toasts.items.some((t) => t.text === "Conflict settled.")).toBe(true);
  });

  it("shows the core's refusal", async () => {
    fakeCore({ conflicts_list: () => reject("forbidden") });
    render(Conflicts);
    await waitFor(() => expect(byId("conflicts-error").textContent).toBe("Your role does not allow this."));
  });
});

describe("RefusedChanges", () => {
  beforeEach(() => {
    app.session = session("reception");
  });

  const refused = (over: Partial<RefusedChange> = {}): RefusedChange => ({
    mutation_id: "m-1",
    entity: "patient",
    op: "update",
    created_at: "2026-03-01T10:20:30Z",
    author: "Rita Reception",
    patient: anna("1980-03-04"),
    code: "merged",
    message: "the record was merged into another; edit that record",
    ...over,
  });

  it("lists each refused change with its patient, what, who and the reason in the user's language", async () => {
    fakeCore({
      refused_changes: () => [
        refused(),
        refused({ mutation_id: "m-2", op: "import", patient: null, code: "other", author: null }),
      ],
    });
    render(RefusedChanges);
    await waitFor(() => expect(screen.getAllByTestId("refused-item")).toHaveLength(2));
    const [first, second] = screen.getAllByTestId("refused-item");
    expect(first!.textContent).toContain("Ivanova Anna");
    expect(first!.textContent).toContain("K7Q-000001-4");
    expect(first!.textContent).toContain("Rita Reception");
    expect(screen.getAllByTestId("refused-op")[0]!.textContent).toBe("Edit");
    expect(screen.getAllByTestId("refused-reason")[0]!.textContent).toBe(
      "The record was merged into another; change that one instead.",
    );
    expect(second!.textContent).toContain("Not about one patient");
    expect(screen.getAllByTestId("refused-op")[1]!.textContent).toBe("Import");
    // A reason this UI does not know yet still reads as a refusal.
    expect(screen.getAllByTestId("refused-reason")[1]!.textContent).toBe("Refused by the server.");
  });

  it("says when nothing was refused, in Thai too", async () => {
    setLanguage("th");
    fakeCore({ refused_changes: () => [] });
    render(RefusedChanges);
    await waitFor(() => expect(byId("refused-empty").textContent).toBe("ไม่มีการเปลี่ยนแปลงที่ถูกปฏิเสธ"));
  });

  it("opens from the status bar's refused count", async () => {
    let opened = 0;
    render(SyncStatusBar, { status: syncStatus({ rejected: 2 }), onrefused: () => opened++ });
    expect(byId("statusbar-rejected").tagName).toBe("BUTTON");
    await fireEvent.click(byId("statusbar-rejected"));
    expect(opened).toBe(1);
  });
});

describe("CentralServer", () => {
  beforeEach(() => {
    app.session = session("admin");
    app.info = info();
  });

  it("asks for every field, shows the address rule and enrols", async () => {
    const core = fakeCore({
      sync_enroll: (a) => {
        if (!String(a.serverUrl).startsWith("https://")) {
          reject("validation", [{ field: "server_url", code: "invalid", message: "use https" }]);
        }
        return null;
      },
      workstation_info: () => info({ mrn_prefix: "ZZ9" }),
      sync_status: () => syncStatus({ server_url: "https://clinic.example" }),
    });
    render(CentralServer);
    await fireEvent.click(byId("server-enroll"));
    expect(byId("server-error").textContent).toBe("Fill in every field.");

    await type("server-url", "http://clinic.example");
    await type("server-clinic", "central");
    await type("server-username", "boss");
    await type("server-password", "Teal-Lantern-48");
    await fireEvent.click(byId("server-enroll"));
    await waitFor(() => expect(byId("server-url-error").textContent).toContain("https://"));

    await type("server-url", "https://clinic.example");
    await type("server-password", "Teal-Lantern-48");
    await fireEvent.click(byId("server-enroll"));
    await waitFor(() => expect(byId("server-enrolled").textContent).toContain("https://clinic.example"));
    expect(core.calls.filter((c) => c.cmd === "sync_enroll").at(-1)?.args).toMatchObject({
      serverUrl: "https://clinic.example",
      clinicCode: "central",
      username: "boss",
      password: "Teal-Lantern-48",
    });
    expect(app.info?.mrn_prefix).toBe("ZZ9");
  });

  it("shows an unreachable server in the user's language", async () => {
    setLanguage("ru");
    fakeCore({ sync_enroll: () => reject("server_unreachable") });
    render(CentralServer);
    await type("server-url", "https://clinic.example");
    await type("server-clinic", "central");
    await type("server-username", "boss");
    await type("server-password", "Teal-Lantern-48");
    await fireEvent.click(byId("server-enroll"));
    await waitFor(() => expect(byId("server-error").textContent).toContain("Сервер недоступен"));
  });
});

describe("formatRecent", () => {
  it("shows only the time for today, the date too otherwise", () => {
    const now = new Date(2026, 2, 1, 15, 0, 0);
    const today = new Date(2026, 2, 1, 9, 5, 0).toISOString();
    const earlier = new Date(2026, 1, 27, 9, 5, 0).toISOString();
    expect(formatRecent(today, "en", now)).toBe("09:05");
    expect(formatRecent(earlier, "en", now)).toMatch(/27 Feb 2026/);
  });
});

describe("displayValue", () => {
  it("reads arrays, nulls and numbers", () => {
    expect(displayValue(["a", "b"])).toBe("a, b");
    expect(displayValue(null)).toBe("");
    expect(displayValue(3)).toBe("3");
  });
});
