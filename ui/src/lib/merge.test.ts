import { describe, expect, it } from "vitest";
import type { Patient } from "../bindings/Patient";
import { patient as basePatient } from "../test/fakeCore";
import { mergeRows, mergeWarnings } from "./merge";

/** A woman of the fake core's shape, in Cyrillic. */
const patient = (over: Partial<Patient> = {}): Patient =>
  basePatient({
    family_name: "Иванова",
    given_name: "Анна",
    sex: "female",
    birth_date: "1977-04-03",
    phones: ["+7 900 123 45 67"],
    ...over,
  });

describe("merge warnings", () => {
  it("say nothing for one person registered twice, spelled alike", () => {
    expect(mergeWarnings(patient(), patient({ id: "p-2", family_name: "ИВАНОВА", phones: [] }))).toEqual([]);
  });
  it("warn about a woman of 49 and a boy of 9", () => {
    const boy = patient({ id: "p-2", family_name: "Петров", given_name: "Иван", sex: "male", birth_date: "2017-05-01" });
    expect(mergeWarnings(patient(), boy)).toEqual(["sex", "birth_date", "name"]);
  });
  it("do not count an unknown sex as a difference", () => {
    expect(mergeWarnings(patient(), patient({ id: "p-2", sex: "unknown" }))).toEqual([]);
  });
});

describe("merge rows", () => {
  it("mark exactly the fields that differ", () => {
    const rows = mergeRows(patient(), patient({ id: "p-2", phones: ["081 234 5678"], national_id: "1100700123456" }));
    expect(rows.filter((r) => r.differs).map((r) => r.field)).toEqual(["national_id", "phones"]);
    expect(rows.find((r) => r.field === "phones")?.other).toBe("081 234 5678");
  });
});
