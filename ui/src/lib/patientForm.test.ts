import { describe, expect, it } from "vitest";
import type { Patient } from "../bindings/Patient";
import { patient } from "../test/fakeCore";
import { emptyForm, formFromPatient, formToInput, remapPhoneErrors, prefillFromQuery } from "./patientForm";

describe("formToInput", () => {
  it("trims, nulls empty optionals and sends ISO dates", () => {
    const f = { ...emptyForm(), family_name: " ใจดี ", given_name: "สมชาย", sex: "male" as const, birth_date: "21.03.1980", phones: ["", " 081 234 5678 "] };
    const { input, errors, phoneRows } = formToInput(f);
    expect(errors).toEqual([]);
    expect(input).toEqual({
      family_name: "ใจดี",
      given_name: "สมชาย",
      middle_name: null,
      sex: "male",
      birth_date: "1980-03-21",
      estimated_age: null,
      phones: ["081 234 5678"],
      national_id: null,
      address: null,
      emergency_contact_name: null,
      emergency_contact_phone: null,
      allergies: null,
      notes: null,
    });
    expect(phoneRows).toEqual([1]);
  });

  it("sends an unparseable date as typed so the core can say bad_date", () => {
    expect(formToInput({ ...emptyForm(), birth_date: "31.02.1980" }).input.birth_date).toBe("31.02.1980");
  });

  it("reads Buddhist-era years for Thai users", () => {
    expect(formToInput({ ...emptyForm(), birth_date: "21.03.2523" }, true).input.birth_date).toBe("1980-03-21");
  });

  it("uses the estimated age only without a date, and checks it is a number", () => {
    expect(formToInput({ ...emptyForm(), estimated_age: "40" }).input.estimated_age).toBe(40);
    expect(formToInput({ ...emptyForm(), estimated_age: "40", birth_date: "1980-01-01" }).input.estimated_age).toBeNull();
    const bad = formToInput({ ...emptyForm(), estimated_age: "forty" });
    expect(bad.errors).toEqual([expect.objectContaining({ field: "estimated_age", code: "out_of_range" })]);
    expect(formToInput({ ...emptyForm(), sex: "" }).input.sex).toBeNull();
  });
});

describe("remapPhoneErrors", () => {
  it("maps the core's phone index back to the form row", () => {
    const errs = remapPhoneErrors(
      [
        { field: "phones.0", code: "phone_chars", message: "" },
        { field: "family_name", code: "required", message: "" },
      ],
      [2],
    );
    expect(errs.map((e) => e.field)).toEqual(["phones.2", "family_name"]);
  });
});

describe("formFromPatient", () => {
  // The stock test patient, with what these tests read set here.
  const base: Patient = patient({
    id: "p1",
    mrn: "K7Q-000001-X",
    family_name: "Иванов",
    given_name: "Иван",
    phones: [],
    created_by: "anna",
    updated_by: "anna",
  });

  it("edits a known date as dd.mm.yyyy and keeps one phone row", () => {
    const f = formFromPatient(base);
    expect(f.birth_date).toBe("21.03.1980");
    expect(f.estimated_age).toBe("");
    expect(f.phones).toEqual([""]);
  });

  it("edits an estimated date as an age", () => {
    const f = formFromPatient({ ...base, birth_date: "1986-07-01", birth_date_estimated: true }, new Date(2026, 5, 1));
    expect(f.birth_date).toBe("");
    expect(f.estimated_age).toBe("40");
  });
});

describe("prefillFromQuery", () => {
  it("puts each typed word where it belongs", () => {
    expect(prefillFromQuery("Иванова Мария Петровна 21.03.1980")).toEqual({
      family_name: "Иванова",
      given_name: "Мария",
      middle_name: "Петровна",
      birth_date: "21.03.1980",
    });
    expect(prefillFromQuery("ใจดี 081-234-5678")).toEqual({ family_name: "ใจดี", phones: ["081-234-5678"] });
    expect(prefillFromQuery("1100700123456")).toEqual({ national_id: "1100700123456" });
    expect(prefillFromQuery("  ")).toEqual({});
  });
});
