// Foundation flows of the workstation, driven through the real app:
// first start, users and roles, registration, duplicates, read-only nurse,
// the audit log, and durability after a hard kill.
//
// Run with tests/e2e/run.sh (needs the built app; see tests/e2e/lib/driver.mjs).

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { ARTIFACTS_DIR, launchApp, tempDb } from "./lib/driver.mjs";

const ADMIN = { username: "admin", display: "Clinic Admin", password: "Teal-Lantern-48" };
const RECEPTION = { username: "rita", display: "Rita Reception", role: "reception", password: "Copper-Kettle-93" };
const NURSE = { username: "nina", display: "Nina Nurse", role: "nurse", password: "Quiet-Harbor-57" };
const THAI_PATIENT = {
  family: "ใจดี",
  given: "สมชาย",
  sex: "male",
  birth: "21.03.1980",
  phone: "081 234 5678",
};

/** Runs `fn`; on failure saves a screenshot named after the step, then rethrows. */
async function step(app, name, fn) {
  try {
    return await fn();
  } catch (e) {
    await app.failed(name);
    throw e;
  }
}

async function setUp(app, admin = ADMIN) {
  await app.waitFor("setup-username", { timeout: 30_000 });
  await app.type("setup-username", admin.username);
  await app.type("setup-display-name", admin.display);
  await app.type("setup-password", admin.password);
  await app.type("setup-password2", admin.password);
  await app.click("setup-submit");
  // A fresh database is empty: the demo offer comes up; start empty.
  await app.waitFor("demo-skip");
  await app.click("demo-skip");
  await app.waitFor("statusbar");
  await app.waitForText("statusbar-user", admin.display);
}

async function signIn(app, user) {
  await app.waitFor("signin-username", { timeout: 30_000 });
  await app.type("signin-username", user.username);
  await app.type("signin-password", user.password);
  await app.click("signin-submit");
  await app.waitFor("statusbar");
  await app.waitForText("statusbar-user", user.display);
}

async function signOut(app) {
  await app.click("signout");
  await app.waitFor("signin-username");
}

async function createUser(app, user) {
  await app.click("nav-admin");
  await app.click("admin-users-tab");
  await app.click("user-create");
  await app.waitFor("uf-username");
  await app.type("uf-username", user.username);
  await app.type("uf-display_name", user.display);
  await app.select("uf-role", user.role);
  await app.select("uf-language", "en");
  await app.type("uf-password", user.password);
  await app.click("uf-submit");
  await app.waitForGone("uf-username");
  const deadline = Date.now() + 10_000;
  for (;;) {
    for (const row of await app.all("user-row")) {
      if ((await app.attr(row, "data-username")) === user.username) return;
    }
    assert.ok(Date.now() < deadline, `user ${user.username} not listed after creating`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function fillPatient(app, p) {
  await app.click("nav-patients");
  await app.click("register-patient");
  await app.waitFor("pf-family_name");
  await app.type("pf-family_name", p.family);
  await app.type("pf-given_name", p.given);
  await app.select("pf-sex", p.sex);
  await app.type("pf-birth_date", p.birth);
  if (p.phone) await app.type("pf-phone-0", p.phone);
  await app.click("pf-submit");
}

/** Registers a patient that has no duplicates; returns its MRN from the record. */
async function registerPatient(app, p) {
  await fillPatient(app, p);
  await app.waitForText("toast-saved", /saved|Сохранено|บันทึกแล้ว/i);
  await app.waitFor("patient-record");
  return (await app.text("patient-mrn")).trim();
}

/** Types into the search box and waits for a result row with this MRN; returns that row. */
async function findByMrn(app, query, mrn, timeout = 10_000) {
  await app.click("nav-patients");
  await app.waitFor("patient-search");
  await app.type("patient-search", query);
  const deadline = Date.now() + timeout;
  let seen = [];
  for (;;) {
    seen = [];
    for (const row of await app.all("search-result")) {
      const m = await app.attr(row, "data-mrn");
      seen.push(m);
      if (m === mrn) return row;
    }
    if (Date.now() >= deadline) assert.fail(`search "${query}" did not list ${mrn}; rows: ${seen.join(", ") || "none"}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe("foundation", () => {
  const db = tempDb();
  /** @type {Awaited<ReturnType<typeof launchApp>> | null} */
  let app = null;
  let mrn = "";
  let patientId = "";

  after(async () => {
    await app?.quit();
  });

  test("first start: set up the admin, create reception and nurse, register and find a Thai patient", async () => {
    app = await launchApp({ db });
    await step(app, "first-start-setup", () => setUp(app));
    await step(app, "first-start-users", async () => {
      await createUser(app, RECEPTION);
      await createUser(app, NURSE);
      await signOut(app);
    });
    await step(app, "first-start-register", async () => {
      await signIn(app, RECEPTION);
      mrn = await registerPatient(app, THAI_PATIENT);
      assert.match(mrn, /^[0-9A-Z]{3}-\d{6}-[0-9A-Z]$/);
      assert.match(await app.text("patient-name"), /ใจดี/);
    });
    await step(app, "first-start-search", async () => {
      const row = await findByMrn(app, "สมช", mrn);
      patientId = await app.attr(row, "data-id");
      assert.ok(patientId, "the result row carries the patient id");
      assert.match(await app.textOf(row), /สมชาย/);
    });
  });

  test("registering the same patient again warns about a duplicate", async () => {
    assert.ok(app && mrn, "needs the first test");
    await step(app, "duplicate-warning", async () => {
      await fillPatient(app, THAI_PATIENT);
      await app.waitFor("duplicate-warning");
      const rows = await app.all("duplicate-candidate");
      const mrns = await Promise.all(rows.map((r) => app.attr(r, "data-mrn")));
      assert.ok(mrns.includes(mrn), `duplicate list ${mrns.join(", ")} names ${mrn}`);
      assert.ok(await app.exists("duplicate-continue"));
      assert.ok(await app.exists("duplicate-open"));
    });
  });

  test("a nurse opens the record read-only", async () => {
    assert.ok(app && mrn, "needs the first test");
    await step(app, "nurse-read-only", async () => {
      await signOut(app);
      await signIn(app, NURSE);
      assert.equal(await app.exists("register-patient"), false, "nurses get no Register button");
      const row = await findByMrn(app, "ใจดี", mrn);
      await app.clickEl(row);
      await app.waitFor("patient-record");
      assert.equal((await app.text("patient-mrn")).trim(), mrn);
      assert.equal(await app.exists("patient-edit"), false, "no Edit for a nurse");
      assert.equal(await app.exists("patient-merge"), false, "no Merge for a nurse");
      assert.equal(await app.exists("pf-family_name"), false, "no form for a nurse");
      assert.equal(await app.exists("nav-admin"), false, "no Admin for a nurse");
    });
  });

  test("the admin sees the patient's create and view in the audit log", async () => {
    assert.ok(app && patientId, "needs the first test");
    await step(app, "audit-log", async () => {
      await signOut(app);
      await signIn(app, ADMIN);
      await app.click("nav-admin");
      await app.click("admin-audit-tab");
      await app.waitFor("audit-table");
      const deadline = Date.now() + 10_000;
      let created = false;
      let viewed = false;
      while (!(created && viewed)) {
        created = false;
        viewed = false;
        for (const row of await app.all("audit-row")) {
          if ((await app.attr(row, "data-entity")) !== "patient") continue;
          if ((await app.attr(row, "data-entity-id")) !== patientId) continue;
          const action = await app.attr(row, "data-action");
          if (action === "create") created = true;
          if (action === "view") viewed = true;
        }
        if (created && viewed) break;
        assert.ok(Date.now() < deadline, `audit log: create=${created} view=${viewed} for patient ${patientId}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await app.click("audit-verify");
      const result = await app.waitFor("audit-verify-result");
      // The element shows for a broken chain too: assert what it says.
      assert.equal(await app.attr(result, "data-intact"), "true", await app.textOf(result));
    });
  });
});

/**
 * The standard deviation (0–1) of the pixels in a region of a PNG, by
 * ImageMagick: 0 means one uniform colour, so nothing readable is there.
 */
function pixelSpread(png, { x, y, width, height }) {
  const out = execFileSync("convert", [png, "-crop", `${width}x${height}+${x}+${y}`, "+repage", "-colorspace", "Gray", "-format", "%[fx:standard_deviation]", "info:"], {
    encoding: "utf8",
  });
  return Number(out.trim());
}

describe("lock", () => {
  /** @type {Awaited<ReturnType<typeof launchApp>> | null} */
  let app = null;

  after(async () => {
    await app?.quit();
  });

  test("a locked workstation shows nothing of the record behind it and asks only for a password", async () => {
    app = await launchApp({ db: tempDb() });
    let mrn = "";
    await step(app, "lock-register", async () => {
      await setUp(app);
      await app.setRect({ width: 1280, height: 800 });
      mrn = await registerPatient(app, { family: "Hidden", given: "Helena", sex: "female", birth: "03.04.1977", phone: "+7 900 123 45 67" });
    });
    // Strips at the window's left and right edges: the menu and the
    // record's fields are there, the lock card (centred) is not.
    const strips = [
      { x: 10, y: 40, width: 180, height: 700 },
      { x: 1090, y: 40, width: 180, height: 700 },
    ];
    const before = await app.screenshot(join(ARTIFACTS_DIR, "lock-before.png"));
    // The measurement can fail: the screen before locking is not uniform.
    assert.ok(pixelSpread(before, strips[0]) > 0.02, "the menu shows before locking");
    await step(app, "lock-locked", async () => {
      await app.click("lock-now");
      await app.waitFor("lock-screen");
      const shot = await app.screenshot(join(ARTIFACTS_DIR, "lock-locked.png"));
      for (const strip of strips) {
        assert.ok(pixelSpread(shot, strip) < 0.002, `uniform behind the lock: ${JSON.stringify(strip)}`);
      }
      const state = await app.execute(`
        const view = document.querySelector('[data-testid="session-view"]');
        const lock = document.querySelector('[data-testid="lock-screen"]');
        return { inert: view.inert, hidden: view.getAttribute("aria-hidden"), visibility: getComputedStyle(view).visibility,
                 focusInLock: lock.contains(document.activeElement) };
      `);
      assert.deepEqual(state, { inert: true, hidden: "true", visibility: "hidden", focusInLock: true });
      await app.type("lock-password", "not-the-password");
      await app.click("lock-submit");
      await app.waitForText("lock-error", "Wrong password.");
    });
    await step(app, "lock-unlocked", async () => {
      await app.type("lock-password", ADMIN.password);
      await app.click("lock-submit");
      await app.waitForGone("lock-screen");
      await app.waitForText("patient-mrn", mrn);
    });
  });
});

describe("durability", () => {
  /** @type {Awaited<ReturnType<typeof launchApp>> | null} */
  let app = null;

  after(async () => {
    await app?.quit();
  });

  test("a saved patient survives a hard kill", async () => {
    const db = tempDb();
    const patient = { family: "Durable", given: "Dmitri", sex: "male", birth: "02.01.1975", phone: "+7 912 345 67 89" };
    app = await launchApp({ db });
    let mrn = "";
    await step(app, "durability-register", async () => {
      await setUp(app);
      mrn = await registerPatient(app, patient);
    });
    await app.killHard();
    app = await launchApp({ db });
    await step(app, "durability-after-restart", async () => {
      await signIn(app, ADMIN);
      await findByMrn(app, "Durable", mrn);
    });
  });
});

describe("start-up", () => {
  /** @type {Awaited<ReturnType<typeof launchApp>> | null} */
  let app = null;
  /** @type {import("node:child_process").ChildProcess | null} */
  let holder = null;

  after(async () => {
    holder?.kill("SIGKILL");
    await app?.quit();
  });

  test("a database held by another program shows why, and Try again opens it once released", async () => {
    const db = tempDb();
    // Another program holds the app's lock on the database (as a second
    // running copy of the app would).
    holder = spawn("python3", [
      "-c",
      "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(600)",
      `${db}.lock`,
    ]);
    const proc = holder;
    await new Promise((resolve, reject) => {
      proc.stdout?.once("data", resolve);
      proc.once("exit", (code) => reject(new Error(`lock holder exited (${code})`)));
    });
    app = await launchApp({ db });
    await step(app, "startup-locked", async () => {
      await app.waitFor("start-error", { timeout: 30_000 });
      assert.match(await app.text("start-error"), /in use by another program/);
    });
    proc.kill("SIGKILL");
    await new Promise((resolve) => proc.once("exit", resolve));
    await step(app, "startup-retry", async () => {
      await app.click("start-retry");
      await app.waitFor("setup-username", { timeout: 30_000 });
    });
  });
});
