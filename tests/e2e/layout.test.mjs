// Every screen (and the merge dialog and the lock screen) works at the window's minimum size (1024×680, as
// tauri.conf.json sets) in English, Russian and Thai: nothing is cut off,
// no table needs a sideways scroll, no button leaves the window, no raw
// code (a snake_case value) is shown. Saves a
// screenshot of each screen in each language to tests/e2e/artifacts/.
//
// Run with tests/e2e/run.sh (needs the built app; see tests/e2e/lib/driver.mjs).

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ARTIFACTS_DIR, launchApp, tempDb } from "./lib/driver.mjs";

const ADMIN = { username: "admin", display: "Clinic Admin", password: "Teal-Lantern-48" };
const MIN = { width: 1024, height: 680 };

/** Elements inside the main area that are cut off or need a sideways scroll. */
const OVERFLOW = `
  const out = [];
  const width = window.innerWidth;
  for (const el of document.querySelectorAll("main *, .statusbar *, .dialog *")) {
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") continue;
    // Visually hidden on purpose (screen-reader text).
    if (el.closest(".sr-only, .nav-label")) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const name = (el.getAttribute("data-testid") || el.className || el.tagName).toString().slice(0, 60);
    if (["auto", "scroll", "hidden"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 2) {
      out.push("scrolls sideways: " + name + " (" + el.scrollWidth + " > " + el.clientWidth + ")");
    }
    // Text read at a desk all day: nothing under 13.5 px (0.93 of the body's 14.5).
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (ownText && parseFloat(style.fontSize) < 13.4) {
      out.push("text too small: " + name + " (" + style.fontSize + ")");
    }
    if ((el.tagName === "BUTTON" || el.tagName === "INPUT" || el.tagName === "SELECT") && r.right > width + 1) {
      out.push("beyond the window: " + name + " (right " + Math.round(r.right) + " > " + width + ")");
    }
  }
  return out;
`;

async function setUp(app) {
  await app.waitFor("setup-username", { timeout: 30_000 });
  await app.type("setup-username", ADMIN.username);
  await app.type("setup-display-name", ADMIN.display);
  await app.type("setup-password", ADMIN.password);
  await app.type("setup-password2", ADMIN.password);
  await app.click("setup-submit");
  await app.waitFor("demo-skip");
  await app.click("demo-skip");
  await app.waitFor("statusbar");
}

async function createUser(app, username, display, role) {
  await app.click("nav-admin");
  await app.click("admin-users-tab");
  await app.click("user-create");
  await app.waitFor("uf-username");
  await app.type("uf-username", username);
  await app.type("uf-display_name", display);
  await app.select("uf-role", role);
  await app.type("uf-password", "Copper-Kettle-93");
  await app.click("uf-submit");
  await app.waitForGone("uf-username");
}

async function registerPatient(app, p) {
  await app.click("nav-patients");
  await app.click("register-patient");
  await app.waitFor("pf-family_name");
  await app.type("pf-family_name", p.family);
  await app.type("pf-given_name", p.given);
  if (p.middle) await app.type("pf-middle_name", p.middle);
  await app.select("pf-sex", p.sex);
  await app.type("pf-birth_date", p.birth);
  await app.type("pf-phone-0", p.phone);
  if (p.nid) await app.type("pf-national_id", p.nid);
  await app.click("pf-submit");
  // A look-alike gets the duplicate warning first.
  for (let i = 0; i < 50; i++) {
    if (await app.exists("patient-record")) return;
    if (await app.exists("duplicate-continue")) await app.click("duplicate-continue");
    await new Promise((r) => setTimeout(r, 100));
  }
  await app.waitFor("patient-record");
}

/** Opens each screen, checks it, saves its screenshot as `<lang>-<screen>.png`. */
async function checkScreens(app, lang) {
  const screens = [
    ["search", async () => {
      await app.click("nav-patients");
      await app.type("patient-search", "Александра");
      await app.waitFor("search-result");
    }],
    ["record", async () => {
      await app.click("search-result");
      await app.waitFor("patient-record");
    }],
    ["register", async () => {
      await app.click("nav-patients");
      await app.click("register-patient");
      await app.waitFor("pf-family_name");
    }],
    ["users", async () => {
      await app.click("pf-cancel");
      await app.click("nav-admin");
      await app.click("admin-users-tab");
      await app.waitFor("user-row");
    }],
    ["audit", async () => {
      await app.click("admin-audit-tab");
      await app.waitFor("audit-row");
    }],
    ["settings", async () => {
      await app.click("admin-settings-tab");
      await new Promise((r) => setTimeout(r, 300));
    }],
    ["merge", async () => {
      await app.click("nav-patients");
      await app.type("patient-search", "Александра");
      await app.waitFor("search-result");
      await app.click("search-result");
      await app.waitFor("patient-merge");
      await app.click("patient-merge");
      await app.type("merge-search", "Александр");
      await app.waitFor("merge-result");
      await app.click("merge-result");
      await app.waitFor("merge-compare");
      await app.waitFor("merge-warning");
    }],
    ["lock", async () => {
      await app.execute("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' })); window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));");
      await app.waitForGone("merge-dialog");
      await app.click("lock-now");
      await app.waitFor("lock-screen");
    }],
    ["unlocked", async () => {
      await app.type("lock-password", ADMIN.password);
      await app.click("lock-submit");
      await app.waitForGone("lock-screen");
    }],
  ];
  const problems = [];
  for (const [name, open] of screens) {
    try {
      await open();
      await new Promise((r) => setTimeout(r, 200));
      for (const p of await app.execute(OVERFLOW)) problems.push(`${lang} ${name}: ${p}`);
      // No raw code on screen: every enum value and field name is a word
      // of the user's language (snake_case never is).
      const text = await app.execute("return document.body.innerText;");
      for (const code of text.match(/\b[a-z]+(?:_[a-z]+)+\b/g) ?? []) problems.push(`${lang} ${name}: raw code "${code}"`);
    } finally {
      await app.screenshot(join(ARTIFACTS_DIR, `min-${lang}-${name}.png`));
    }
  }
  return problems;
}

describe("minimum window size", () => {
  /** @type {Awaited<ReturnType<typeof launchApp>> | null} */
  let app = null;

  after(async () => {
    await app?.quit();
  });

  test("every screen fits 1024×680 in English, Russian and Thai", async () => {
    app = await launchApp({ db: tempDb() });
    await setUp(app);
    await app.setRect(MIN);
    await createUser(app, "reception.anastasia", "Анастасия Константиновна Васильева-Петровская", "reception");
    await registerPatient(app, {
      family: "Константинопольская-Ривкина", given: "Александра", middle: "Владимировна",
      sex: "female", birth: "21.03.1980", phone: "+7 912 345 67 89", nid: "1100700123456",
    });
    // Another person entirely, for the merge dialog's warnings.
    await registerPatient(app, { family: "Петров", given: "Александр", sex: "male", birth: "01.05.2017", phone: "+7 900 555 44 33" });
    const problems = [];
    for (const lang of ["en", "ru", "th"]) {
      await app.select("statusbar-language", lang);
      problems.push(...(await checkScreens(app, lang)));
    }
    const size = await app.execute("return [window.innerWidth, window.innerHeight];");
    assert.ok(size[0] <= MIN.width + 2, `the window is at its minimum width: ${size}`);
    assert.deepEqual(problems, [], problems.join("\n"));
  });
});
