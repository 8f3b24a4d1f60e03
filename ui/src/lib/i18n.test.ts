import { describe, expect, it } from "vitest";
import { en } from "./i18n/en";
import { DICTIONARIES, LANGUAGES, placeholders, translate, hasKey } from "./i18n";
import {
  AUDIT_ACTION_VALUES,
  ERROR_CODE_VALUES,
  FIELD_CODE_VALUES,
  LANGUAGE_VALUES,
  OP_VALUES,
  REJECT_CODE_VALUES,
  SYNC_PROBLEM_CODE_VALUES,
} from "../bindings/codes";

const keys = Object.keys(en);

describe("translations", () => {
  for (const lang of LANGUAGES) {
    const dict = DICTIONARIES[lang] as Record<string, string>;

    it(`${lang} has every key of en and no others`, () => {
      expect(Object.keys(dict).sort()).toEqual([...keys].sort());
    });

    it(`${lang} has no empty messages`, () => {
      for (const k of keys) expect(dict[k]?.trim(), `${lang}:${k}`).toBeTruthy();
    });

    it(`${lang} uses the same placeholders as en`, () => {
      for (const k of keys) {
        expect(placeholders(dict[k] ?? ""), `${lang}:${k}`).toEqual(placeholders(en[k as keyof typeof en]));
      }
    });
  }

  it("ru and th are really translated (not copies of en)", () => {
    for (const lang of ["ru", "th"] as const) {
      const dict = DICTIONARIES[lang];
      const same = keys.filter((k) => dict[k as keyof typeof en] === en[k as keyof typeof en] && !k.startsWith("lang."));
      // A few symbols ("—", "#") may legitimately stay the same.
      expect(same.length, `${lang}: ${same.join(", ")}`).toBeLessThan(4);
    }
  });

  it("covers every error code and field error code", () => {
    // The lists come from the Rust enums (bindings/codes.ts): a code added
    // there without a translation fails here.
    for (const code of ERROR_CODE_VALUES) expect(hasKey(`error.${code}`), code).toBe(true);
    for (const code of FIELD_CODE_VALUES) expect(hasKey(`field_error.${code}`), code).toBe(true);
    for (const code of REJECT_CODE_VALUES) expect(hasKey(`refused.reason.${code}`), code).toBe(true);
    for (const op of OP_VALUES) expect(hasKey(`refused.op.${op}`), op).toBe(true);
    for (const code of SYNC_PROBLEM_CODE_VALUES) expect(hasKey(`sync_problem.${code}`), code).toBe(true);
  });

  it("covers every enum the bindings define", () => {
    const enums: Record<string, string[]> = {
      role: ["admin", "doctor", "nurse", "reception", "imaging_operator"],
      sex: ["female", "male", "other", "unknown"],
      action: [...AUDIT_ACTION_VALUES],
      "dup.reason": ["national_id", "phone", "name_and_birth_date"],
      lang: [...LANGUAGE_VALUES],
      nav: ["patients", "schedule", "queue", "records", "imaging", "reports", "admin"],
    };
    for (const [prefix, values] of Object.entries(enums)) {
      for (const v of values) expect(hasKey(`${prefix}.${v}`), `${prefix}.${v}`).toBe(true);
    }
  });

  it("fills placeholders and leaves unknown ones", () => {
    expect(translate("en", "patients.no_results", { query: "abc" })).toBe("No patients found for “abc”.");
    expect(translate("ru", "import.progress", { done: 5 })).toBe("Обработано строк: 5");
    expect(translate("th", "demo.loaded", { count: 200 })).toContain("200");
    expect(translate("en", "lock.body")).toContain("{name}");
  });

  it("returns the key itself for an unknown key", () => {
    expect(translate("ru", "no.such.key")).toBe("no.such.key");
  });
});
