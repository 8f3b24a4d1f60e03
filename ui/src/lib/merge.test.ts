import { describe, expect, it } from "vitest";
import type { Patient } from "../bindings/Patient";
import { mergeRows, mergeWarnings } from "./merge";

function patient(over: Partial<Patient> = {}): Patient {
  return {
    id: "p-1",
    mrn: "K7Q-000001-X",
    family_name: "Иванова",
    given_name: "Анна",
    middle_name: null,
    sex: "female",
    birth_date: "1977-04-03",
    birth_date_estimated: false,
    phones: ["+7 900 123 45 67"],
    national_id: null,
    address: null,
    emergency_contact_name: null,
    emergency_contact_phone: null,
    allergies: null,
    notes: null,
    status: "active",
    merged_into: null,
    version: 1,
    created_at: "2026-01-01T00:00:00Z",
    created_by: "rita",
    updated_at: "2026-01-01T00:00:00Z",
    updated_by: "rita",
    workstation_id: "w-1",
    ...over,
  };
}

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
