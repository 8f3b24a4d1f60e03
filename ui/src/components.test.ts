import { beforeEach, describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import App from "./App.svelte";
import SignIn from "./screens/SignIn.svelte";
import Setup from "./screens/Setup.svelte";
import PatientForm from "./screens/patients/PatientForm.svelte";
import PatientRecord from "./screens/patients/PatientRecord.svelte";
import PatientSearch from "./screens/patients/PatientSearch.svelte";
import { app, toasts } from "./lib/state.svelte";
import { setLanguage } from "./lib/locale.svelte";
import { fakeCore, info, patient, reject, session, summary, syncStatus } from "./test/fakeCore";
import { byId, startEachTestClean, type } from "./test/screen";

startEachTestClean();

/** The core of a set-up workstation that nobody is signed in to, as the app starts. */
const signedOutCore = {
  workstation_info: () => info(),
  current_session: () => null,
  ui_show: () => null,
  ui_ready: () => null,
};

/** Starts the app and signs in through its sign-in screen, up to the status bar of the shell. */
async function signInThroughApp(username: string, password: string): Promise<void> {
  render(App);
  await waitFor(() => byId("signin-username"));
  await type("signin-username", username);
  await type("signin-password", password);
  await fireEvent.click(byId("signin-submit"));
  // The signed-in screens are a lazily loaded chunk (compiled on first use here).
  await waitFor(() => byId("statusbar"), { timeout: 5000 });
}

describe("App start", () => {
  it("shows the setup screen on a first start, then the window, and signals ui_ready once", async () => {
    const core = fakeCore({
      workstation_info: () => info({ needs_setup: true, is_empty: true }),
      ui_show: () => null,
      ui_ready: () => null,
    });
    render(App);
    await waitFor(() => expect(byId("setup-username")).toBeTruthy());
    await waitFor(() => expect(core.called("ui_ready")).toBe(1));
    expect(core.called("current_session")).toBe(0);
    // The hidden window is shown before the painted screen is reported.
    const order = core.calls.map((c) => c.cmd).filter((c) => c.startsWith("ui_"));
    expect(order).toEqual(["ui_show", "ui_ready"]);
    expect(core.calls.at(-1)?.args.screen).toBe("setup");
  });

  it("shows sign-in, then the shell with the user and Offline in the status bar", async () => {
    fakeCore({
      ...signedOutCore,
      sign_in: (a) => (a.username === "anna" && a.password === "Teal-Lantern-48" ? session("reception") : reject("invalid_credentials")),
      sync_status: () => syncStatus(),
    });
    await signInThroughApp("anna", "Teal-Lantern-48");
    expect(byId("statusbar-user").textContent).toContain("Test reception");
    expect(byId("statusbar-user").textContent).toContain("Reception");
    await waitFor(() => expect(byId("statusbar-connection").textContent).toContain("Offline"));
    expect(screen.queryByTestId("nav-admin")).toBeNull();
    expect(byId("nav-patients")).toBeTruthy();
    // Sections whose screens are not built yet are not in the menu.
    for (const section of ["schedule", "queue", "records", "imaging", "reports"]) {
      expect(screen.queryByTestId(`nav-${section}`), section).toBeNull();
    }
    // The lazily loaded shell may take most of the default 5 s on a busy machine.
  }, 15_000);

  it("shows the lock screen when a command says session_locked", async () => {
    fakeCore({
      workstation_info: () => info(),
      current_session: () => session("reception"),
      ui_show: () => null,
      ui_ready: () => null,
      patient_search: () => reject("session_locked"),
      activity: () => null,
    });
    render(App);
    await waitFor(() => byId("patient-search"), { timeout: 5000 });
    await type("patient-search", "Ivan");
    await waitFor(() => byId("lock-screen"), { timeout: 2000 });
    expect(byId("lock-password")).toBeTruthy();
  });
});

describe("Languages", () => {
  it("the sign-in screen keeps the workstation's language, whatever the last user's was", async () => {
    setLanguage("ru");
    fakeCore({
      ...signedOutCore,
      sign_in: () => ({ ...session("nurse"), user: { ...session("nurse").user, language: "th" } }),
      sign_out: () => null,
      sync_status: () => syncStatus(),
    });
    await signInThroughApp("nina", "Quiet-Harbor-57");
    expect(document.documentElement.lang).toBe("th");
    await fireEvent.click(byId("signout"));
    await waitFor(() => byId("signin-username"));
    expect(document.documentElement.lang).toBe("ru");
    expect(byId("signin-submit").textContent).toBe("Войти");
  }, 15_000);
});

describe("Setup", () => {
  it("reports every problem at once, the core's rules and the password mismatch together", async () => {
    const core = fakeCore({
      new_user_problems: () => [
        { field: "username", code: "bad_username", message: "x" },
        { field: "password", code: "too_short", message: "x", limit: 10 },
      ],
    });
    render(Setup, { props: { ondone: () => {} } });
    await type("setup-username", "a");
    await type("setup-password", "short");
    await type("setup-password2", "other");
    await fireEvent.click(byId("setup-submit"));
    await waitFor(() => byId("setup-error-password2"));
    expect(byId("setup-error-username")).toBeTruthy();
    expect(byId("setup-error-password").textContent).toBe("Too short: at least 10 characters.");
    expect(core.called("setup_admin")).toBe(0);
  });
});

describe("SignIn", () => {
  it("shows a translated error for wrong credentials", async () => {
    fakeCore({ sign_in: () => reject("invalid_credentials") });
    setLanguage("ru");
    render(SignIn, { props: { onsignedin: () => {} } });
    await type("signin-username", "anna");
    await type("signin-password", "wrong-password");
    await fireEvent.click(byId("signin-submit"));
    await waitFor(() => expect(byId("signin-error").textContent).toBe("Неверное имя пользователя или пароль."));
  });
});

/**
 * Fills the registration form with the stock test patient (สมชาย ใจดี, born
 * 21.03.1980) and submits it, up to the duplicate warning the fake core's
 * candidates bring up.
 */
async function registerSomchaiUntilDuplicatesShow(): Promise<void> {
  render(PatientForm, { props: { mode: "register" } });
  await type("pf-family_name", "ใจดี");
  await type("pf-given_name", "สมชาย");
  await fireEvent.change(byId("pf-sex"), { target: { value: "male" } });
  await type("pf-birth_date", "21.03.1980");
  await fireEvent.click(byId("pf-submit"));
  await waitFor(() => byId("duplicate-warning"));
}

describe("PatientForm", () => {
  beforeEach(() => {
    app.session = session("reception");
  });

  it("shows field errors from the core beside the fields", async () => {
    fakeCore({
      patient_check_duplicates: () =>
        reject("validation", [
          { field: "family_name", code: "required", message: "is required" },
          { field: "phones.0", code: "phone_chars", message: "bad" },
        ]),
    });
    render(PatientForm, { props: { mode: "register" } });
    await type("pf-phone-0", "abc");
    await fireEvent.click(byId("pf-submit"));
    await waitFor(() => byId("pf-error-family_name"));
    expect(byId("pf-error-family_name").textContent).toBe("Required.");
    expect(byId("pf-error-phones.0").textContent).toMatch(/digits/);
  });

  it("warns about duplicates, then registers anyway and confirms", async () => {
    const existing = patient();
    const created = patient({ id: "p-2", mrn: "K7Q-000002-2" });
    const core = fakeCore({
      patient_check_duplicates: () => [{ patient: summary(existing), reasons: ["name_and_birth_date", "phone"] }],
      patient_register: () => created,
    });
    await registerSomchaiUntilDuplicatesShow();
    expect(screen.getAllByTestId("duplicate-candidate")).toHaveLength(1);
    expect(byId("duplicate-warning").textContent).toContain("Same name and date of birth");
    const sent = core.calls.find((c) => c.cmd === "patient_check_duplicates")?.args.input as Record<string, unknown>;
    expect(sent.birth_date).toBe("1980-03-21");
    expect(sent.sex).toBe("male");
    expect(core.called("patient_register")).toBe(0);

    await fireEvent.click(byId("duplicate-continue"));
    await waitFor(() => expect(core.called("patient_register")).toBe(1));
    await waitFor(() => expect(app.patients).toEqual({ kind: "record", id: "p-2" }));
    expect(toasts.items.some((t) => t.kind === "saved")).toBe(true);
  });

  it("looks for duplicates early, when the user leaves the date field", async () => {
    const existing = patient();
    const core = fakeCore({
      patient_check_duplicates: () => [{ patient: summary(existing), reasons: ["national_id"] }],
    });
    render(PatientForm, { props: { mode: "register" } });
    await type("pf-family_name", "ใจดี");
    await fireEvent.blur(byId("pf-family_name"));
    expect(core.called("patient_check_duplicates")).toBe(0);
    await type("pf-given_name", "สมชาย");
    await type("pf-birth_date", "1980-03-21");
    await fireEvent.blur(byId("pf-birth_date"));
    await waitFor(() => byId("duplicate-warning"));
    expect(byId("duplicate-warning").textContent).toContain("Same national ID");
    expect(byId("duplicate-candidate").dataset.mrn).toBe(existing.mrn);
  });

  it("starts in the first field, saves on Ctrl+Enter and says so", async () => {
    const core = fakeCore({ patient_check_duplicates: () => [], patient_register: () => patient({ id: "p-3" }) });
    render(PatientForm, { props: { mode: "register" } });
    await waitFor(() => expect(document.activeElement).toBe(byId("pf-family_name")));
    expect(byId("pf-shortcut").textContent).toBe("Ctrl+Enter saves");
    await type("pf-family_name", "ใจดี");
    await type("pf-given_name", "สมชาย");
    await fireEvent.change(byId("pf-sex"), { target: { value: "male" } });
    await type("pf-birth_date", "21.03.1980");
    await fireEvent.keyDown(byId("pf-given_name"), { key: "Enter", ctrlKey: true });
    await waitFor(() => expect(core.called("patient_register")).toBe(1));
  });

  it("asks before Cancel throws typed data away, and not when nothing was typed", async () => {
    fakeCore({});
    app.patients = { kind: "register" };
    render(PatientForm, { props: { mode: "register" } });
    await type("pf-family_name", "Half-typed");
    await fireEvent.click(byId("pf-cancel"));
    expect(byId("discard-ask")).toBeTruthy();
    expect(app.patients).toEqual({ kind: "register" });
    await waitFor(() => expect(document.activeElement).toBe(byId("discard-keep")));
    await fireEvent.click(byId("discard-keep"));
    expect((byId("pf-family_name") as HTMLInputElement).value).toBe("Half-typed");
    await fireEvent.click(byId("pf-cancel"));
    await fireEvent.click(byId("discard-confirm"));
    expect(app.patients).toEqual({ kind: "search" });
  });

  it("leaves at once when nothing was typed", async () => {
    fakeCore({});
    app.patients = { kind: "register" };
    render(PatientForm, { props: { mode: "register" } });
    await fireEvent.click(byId("pf-cancel"));
    expect(screen.queryByTestId("discard-ask")).toBeNull();
    expect(app.patients).toEqual({ kind: "search" });
  });

  it("offers one way to submit and one Cancel while duplicates are shown", async () => {
    fakeCore({ patient_check_duplicates: () => [{ patient: summary(patient()), reasons: ["phone"] }] });
    await registerSomchaiUntilDuplicatesShow();
    expect(screen.queryByTestId("pf-submit")).toBeNull();
    expect(screen.getAllByTestId("duplicate-continue")).toHaveLength(1);
    const cancels = screen.getAllByRole("button").filter((b) => b.textContent?.trim() === "Cancel");
    expect(cancels).toHaveLength(1);
  });

  it("cannot be used without write permission", () => {
    fakeCore({});
    app.session = session("nurse");
    render(PatientForm, { props: { mode: "register" } });
    expect(screen.queryByTestId("pf-family_name")).toBeNull();
    expect(screen.queryByTestId("pf-submit")).toBeNull();
  });
});

describe("PatientRecord", () => {
  it("is read-only for a nurse", async () => {
    fakeCore({ patient_get: () => patient() });
    app.session = session("nurse");
    render(PatientRecord, { props: { id: "p-1" } });
    await waitFor(() => byId("patient-mrn"));
    expect(byId("patient-mrn").textContent).toBe("K7Q-000001-4");
    expect(byId("patient-name").textContent).toBe("ใจดี สมชาย");
    expect(screen.queryByTestId("patient-edit")).toBeNull();
    expect(screen.queryByTestId("patient-merge")).toBeNull();
  });

  it("offers edit and merge to reception, and shows history", async () => {
    fakeCore({
      patient_get: () => patient({ version: 2 }),
      patient_history: () => [
        { at: "2026-01-02T10:00:00Z", user_name: "Test reception", action: "update", changes: [{ field: "family_name", before: "Jaidee", after: "ใจดี" }] },
      ],
    });
    app.session = session("reception");
    render(PatientRecord, { props: { id: "p-1" } });
    await waitFor(() => byId("patient-edit"));
    await waitFor(() => expect(document.activeElement).toBe(byId("patient-edit")));
    expect(byId("patient-merge")).toBeTruthy();
    await fireEvent.click(byId("patient-history-tab"));
    await waitFor(() => expect(byId("patient-history").textContent).toContain("Jaidee"));
    expect(byId("patient-history").textContent).toContain("Family name");
  });
});

describe("PatientSearch", () => {
  it("offers to register the typed name when nobody is found, with the form filled in", async () => {
    fakeCore({ patient_search: () => [] });
    app.session = session("reception");
    render(PatientSearch);
    await type("patient-search", "Newcomer Nina 02.03.1990");
    await waitFor(() => byId("register-from-search"));
    expect(byId("register-from-search").textContent).toContain("Newcomer Nina 02.03.1990");
    await fireEvent.click(byId("register-from-search"));
    expect(app.patients).toEqual({
      kind: "register",
      prefill: { family_name: "Newcomer", given_name: "Nina", birth_date: "02.03.1990" },
    });
    render(PatientForm, { props: { mode: "register", prefill: app.patients.kind === "register" ? app.patients.prefill : {} } });
    expect((byId("pf-family_name") as HTMLInputElement).value).toBe("Newcomer");
    expect((byId("pf-birth_date") as HTMLInputElement).value).toBe("02.03.1990");
  });

  it("searches as you type and opens a result with the keyboard", async () => {
    const a = patient();
    const b = patient({ id: "p-2", mrn: "K7Q-000002-2", given_name: "สมชัย" });
    const core = fakeCore({ patient_search: () => [summary(a), summary(b)] });
    app.session = session("reception");
    render(PatientSearch);
    await type("patient-search", "สมช");
    await waitFor(() => expect(screen.getAllByTestId("search-result")).toHaveLength(2));
    expect(core.calls.find((c) => c.cmd === "patient_search")?.args).toEqual({ query: "สมช", limit: 50 });
    const rows = screen.getAllByTestId("search-result");
    expect(rows[1]?.getAttribute("data-mrn")).toBe("K7Q-000002-2");
    expect(rows[0]?.textContent).toContain("21 Mar 1980");
    await fireEvent.keyDown(byId("patient-search"), { key: "ArrowDown" });
    await fireEvent.keyDown(byId("patient-search"), { key: "Enter" });
    await waitFor(() => expect(app.patients).toEqual({ kind: "record", id: "p-2" }));
  });

  it("sends a typed date as ISO", async () => {
    const core = fakeCore({ patient_search: () => [] });
    app.session = session("reception");
    render(PatientSearch);
    await type("patient-search", "21.03.1980");
    await waitFor(() => expect(core.called("patient_search")).toBe(1));
    expect(core.calls[0]?.args.query).toBe("1980-03-21");
    await waitFor(() => byId("search-empty"));
  });
});
