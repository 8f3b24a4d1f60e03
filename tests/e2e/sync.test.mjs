// Sync between two workstations through the real central server:
// PostgreSQL (started by tests/e2e/run.sh, $CLINIC_TEST_PG_URL), clinic-server
// migrated and serving on a free loopback port, two app instances (each with
// its own database and its own tauri-driver), both enrolled by an admin;
// reception registers a patient on one and finds it on the other.
//
// Run with tests/e2e/run.sh (it starts PostgreSQL, builds clinic-server and
// starts the second driver, $TAURI_DRIVER_URL_2).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, writeFileSync, openSync, existsSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join } from "node:path";
import { ARTIFACTS_DIR, launchApp, tempDb } from "./lib/driver.mjs";

const LOCAL_ADMIN = { username: "ws.admin", display: "Workstation Admin", password: "Teal-Lantern-48" };
const SERVER_ADMIN = { username: "clinic.admin", display: "Clinic Admin", password: "Amber-Compass-61" };
const RECEPTION = { username: "rita", display: "Rita Reception", password: "Copper-Kettle-93" };
const CLINIC = "central";
const PATIENT = { family: "Sokolova", given: "Vera", sex: "female", birth: "14.07.1991", phone: "+7 912 555-01-23" };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serverBinary() {
  if (process.env.CLINIC_SERVER_BINARY) return process.env.CLINIC_SERVER_BINARY;
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache", "clinic-workstation", "target");
  return join(target, "debug", "clinic-server");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs on failure: a screenshot of each app named after the step, then rethrows. */
async function step(apps, name, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [i, app] of apps.entries()) await app?.failed(`${name}-app${i + 1}`);
    throw e;
  }
}

async function setUpLocal(app) {
  await app.waitFor("setup-username", { timeout: 30_000 });
  await app.type("setup-username", LOCAL_ADMIN.username);
  await app.type("setup-display-name", LOCAL_ADMIN.display);
  await app.type("setup-password", LOCAL_ADMIN.password);
  await app.type("setup-password2", LOCAL_ADMIN.password);
  await app.click("setup-submit");
  await app.waitFor("demo-skip");
  await app.click("demo-skip");
  await app.waitForText("statusbar-user", LOCAL_ADMIN.display);
}

async function enroll(app, url) {
  await app.click("nav-admin");
  await app.click("admin-settings-tab");
  await app.waitFor("server-url");
  await app.type("server-url", url);
  await app.type("server-clinic", CLINIC);
  await app.type("server-username", SERVER_ADMIN.username);
  await app.type("server-password", SERVER_ADMIN.password);
  await app.click("server-enroll");
  await app.waitForText("server-enrolled", url, { timeout: 30_000 });
}

async function signIn(app, user) {
  await app.waitFor("signin-username", { timeout: 30_000 });
  await app.type("signin-username", user.username);
  await app.type("signin-password", user.password);
  await app.click("signin-submit");
  await app.waitForText("statusbar-user", user.display, { timeout: 30_000 });
}

async function signOut(app) {
  await app.click("signout");
  await app.waitFor("signin-username");
}

describe("sync between two workstations", () => {
  const pgUrl = process.env.CLINIC_TEST_PG_URL;
  const driver2 = process.env.TAURI_DRIVER_URL_2;
  /** @type {import("node:child_process").ChildProcess | null} */
  let server = null;
  let serverUrl = "";
  /** @type {() => Promise<void>} */
  let startServer = async () => {};
  /** @type {any[]} */
  const apps = [];

  before(async () => {
    assert.ok(pgUrl, "CLINIC_TEST_PG_URL is not set: run this through tests/e2e/run.sh (it starts PostgreSQL)");
    assert.ok(driver2, "TAURI_DRIVER_URL_2 is not set: run this through tests/e2e/run.sh (it starts a second tauri-driver)");
    const bin = serverBinary();
    assert.ok(existsSync(bin), `clinic-server not found at ${bin} (cargo build -p clinic-server)`);
    const port = await freePort();
    serverUrl = `http://127.0.0.1:${port}`;
    const dir = mkdtempSync(join(tmpdir(), "clinic-e2e-server-"));
    const config = join(dir, "server.toml");
    writeFileSync(
      config,
      `database_url = "${pgUrl}"\nlisten = "127.0.0.1:${port}"\ntoken_secret = "e2e-secret-0123456789-abcdefghijklmnop"\n`,
    );
    const run = (args, input) => execFileSync(bin, ["--config", config, ...args], { input, stdio: ["pipe", "pipe", "inherit"], timeout: 60_000 });
    run(["migrate"]);
    run(["create-clinic", "--code", CLINIC, "--name", "Central clinic"]);
    run(["create-user", "--clinic", CLINIC, "--username", SERVER_ADMIN.username, "--display-name", SERVER_ADMIN.display, "--role", "admin"], `${SERVER_ADMIN.password}\n`);
    run(["create-user", "--clinic", CLINIC, "--username", RECEPTION.username, "--display-name", RECEPTION.display, "--role", "reception"], `${RECEPTION.password}\n`);
    startServer = async () => {
      const log = openSync(join(ARTIFACTS_DIR, "clinic-server.log"), "a");
      server = spawn(bin, ["--config", config, "serve"], { stdio: ["ignore", log, log] });
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          if ((await fetch(`${serverUrl}/health`, { signal: AbortSignal.timeout(1000) })).ok) break;
        } catch {
          // not listening yet
        }
        assert.ok(server.exitCode === null, "clinic-server exited; see tests/e2e/artifacts/clinic-server.log");
        assert.ok(Date.now() < deadline, "clinic-server not healthy after 30 s");
        await sleep(200);
      }
    };
    writeFileSync(join(ARTIFACTS_DIR, "clinic-server.log"), "");
    await startServer();
  });

  async function stopServer() {
    if (!server || server.exitCode !== null) return;
    const s = server;
    await new Promise((r) => {
      const t = setTimeout(() => {
        s.kill("SIGKILL");
      }, 5000);
      s.once("exit", () => {
        clearTimeout(t);
        r(undefined);
      });
      s.kill("SIGTERM");
    });
  }

  after(async () => {
    for (const app of apps) await app?.quit();
    await stopServer();
  });

  let mrn = "";

  test("enrol two workstations; a patient registered on one is found on the other", async () => {
    apps.push(await launchApp({ db: tempDb() }));
    apps.push(await launchApp({ db: tempDb(), driverUrl: driver2 }));
    const [one, two] = apps;
    // Side by side (run.sh's screen is two windows wide), so each screenshot shows its own app.
    await one.setRect({ x: 0, y: 0 }).catch(() => {});
    await two.setRect({ x: 1400, y: 0 }).catch(() => {});

    for (const [i, app] of apps.entries()) {
      await step(apps, `sync-enroll-${i + 1}`, async () => {
        await setUpLocal(app);
        // Before enrolment the status bar says the workstation is on its own.
        await app.waitForText("statusbar-connection", "Local only");
        await enroll(app, serverUrl);
        await app.waitForText("statusbar-connection", "Online", { timeout: 30_000 });
        await signOut(app);
        await signIn(app, RECEPTION);
      });
    }

    await step(apps, "sync-register", async () => {
      await one.click("nav-patients");
      await one.click("register-patient");
      await one.waitFor("pf-family_name");
      await one.type("pf-family_name", PATIENT.family);
      await one.type("pf-given_name", PATIENT.given);
      await one.select("pf-sex", PATIENT.sex);
      await one.type("pf-birth_date", PATIENT.birth);
      await one.type("pf-phone-0", PATIENT.phone);
      await one.click("pf-submit");
      await one.waitFor("patient-record");
      mrn = (await one.text("patient-mrn")).trim();
      // Sent: nothing left to send on the first workstation.
      await one.waitForText("statusbar-pending", "All changes sent", { timeout: 15_000 });
    });

    await step(apps, "sync-found-on-two", async () => {
      const started = Date.now();
      await two.click("nav-patients");
      await two.waitFor("patient-search");
      const deadline = started + 20_000;
      let seen = [];
      for (;;) {
        // The search runs as one types: type again until the row is there.
        await two.type("patient-search", PATIENT.family.slice(0, 5));
        const until = Date.now() + 1500;
        while (Date.now() < until) {
          seen = [];
          for (const row of await two.all("search-result")) seen.push(await two.attr(row, "data-mrn"));
          if (seen.includes(mrn)) break;
          await sleep(150);
        }
        if (seen.includes(mrn)) break;
        assert.ok(Date.now() < deadline, `patient ${mrn} not found on the second workstation after 20 s; rows: ${seen.join(", ") || "none"}`);
      }
      console.log(`sync: ${mrn} found on the second workstation ${Date.now() - started} ms after the search started`);
      assert.match(await two.text("statusbar-last-sync"), /Synced/);
      await two.screenshot(join(ARTIFACTS_DIR, "sync-two-workstations.png"));
    });
  });

  /** Opens the patient with `mrn` from a search for `query`. */
  async function openPatient(app, query, mrn) {
    await app.click("nav-patients");
    await app.waitFor("patient-search");
    await app.type("patient-search", query);
    const deadline = Date.now() + 10_000;
    for (;;) {
      for (const row of await app.all("search-result")) {
        if ((await app.attr(row, "data-mrn")) === mrn) {
          await app.clickEl(row);
          await app.waitFor("patient-record");
          return;
        }
      }
      assert.ok(Date.now() < deadline, `no search result ${mrn}`);
      await sleep(150);
    }
  }

  async function editGivenName(app, given) {
    await openPatient(app, PATIENT.family.slice(0, 5), mrn);
    await app.click("patient-edit");
    await app.waitFor("pf-given_name");
    await app.type("pf-given_name", given);
    await app.click("pf-submit");
    await app.waitFor("patient-record");
    await app.waitForText("patient-name", given);
  }

  test("offline: sign-in works locally, edits wait, and a conflict goes to reception", async () => {
    assert.ok(mrn, "needs the first test");
    const [one, two] = apps;
    await step(apps, "sync-offline-sign-in", async () => {
      await stopServer();
      // The server is gone: reception signs in with the verifier left by the online sign-in.
      await signOut(one);
      await signIn(one, RECEPTION);
      await one.waitForText("statusbar-connection", "Offline", { timeout: 30_000 });
    });
    await step(apps, "sync-offline-edits", async () => {
      await editGivenName(one, "Veronika");
      await editGivenName(two, "Verena");
      await one.waitForText("statusbar-pending", "1 to send");
    });
    await step(apps, "sync-conflict", async () => {
      await startServer();
      // Both push when their backoff ends; one edit wins, the other becomes a conflict.
      const deadline = Date.now() + 90_000;
      let withConflict = null;
      while (!withConflict) {
        for (const app of apps) {
          if (await app.exists("statusbar-conflicts")) withConflict = app;
        }
        assert.ok(Date.now() < deadline, "no conflict shown on either workstation after 90 s");
        if (!withConflict) await sleep(500);
      }
      await withConflict.click("statusbar-conflicts");
      await withConflict.waitFor("conflict");
      assert.equal(await withConflict.text("conflict-field"), "Given name");
      const values = [await withConflict.text("conflict-server"), await withConflict.text("conflict-client")].sort();
      assert.deepEqual(values, ["Verena", "Veronika"]);
      assert.match(await withConflict.text("conflict-mrn"), new RegExp(mrn));
      await withConflict.screenshot(join(ARTIFACTS_DIR, "sync-conflicts.png"));
      const lost = await withConflict.text("conflict-client");
      await withConflict.click("conflict-use-client");
      await withConflict.waitFor("conflicts-empty");
      await withConflict.waitForGone("statusbar-conflicts", { timeout: 30_000 });
      // The value chosen goes to the server and on to the other workstation.
      const other = withConflict === one ? two : one;
      await openPatient(other, PATIENT.family.slice(0, 5), mrn);
      const until = Date.now() + 30_000;
      for (;;) {
        await openPatient(other, PATIENT.family.slice(0, 5), mrn);
        if ((await other.text("patient-name")).includes(lost)) break;
        assert.ok(Date.now() < until, `the chosen value ${lost} did not reach the other workstation`);
        await sleep(1000);
      }
    });
  });
});
