import { describe, expect, it } from "vitest";
import { en } from "./i18n/en";
import { DICTIONARIES, LANGUAGES, placeholders, translate, hasKey } from "./i18n";
import { ERROR_CODES, FIELD_ERROR_CODES } from "./errors";

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
    for (const code of ERROR_CODES) expect(hasKey(`error.${code}`), code).toBe(true);
    for (const code of FIELD_ERROR_CODES) expect(hasKey(`field_error.${code}`), code).toBe(true);
  });

  it("covers every enum the bindings define", () => {
    const enums: Record<string, string[]> = {
      role: ["admin", "doctor", "nurse", "reception", "imaging_operator"],
      sex: ["female", "male", "other", "unknown"],
      action: ["create", "update", "merge", "view", "sign_in", "sign_in_failed", "sign_out", "import"],
      "dup.reason": ["national_id", "phone", "name_and_birth_date"],
      lang: ["en", "ru", "th"],
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
