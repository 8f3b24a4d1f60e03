import type { FieldError } from "../bindings/FieldError";
import type { Patient } from "../bindings/Patient";
import type { PatientInput } from "../bindings/PatientInput";
import type { Sex } from "../bindings/Sex";
import { isoToDotted } from "./format";
import { normalizeDate } from "./search";

/** The registration form as typed: every field a string. */
export interface PatientFormModel {
  family_name: string;
  given_name: string;
  middle_name: string;
  sex: Sex | "";
  birth_date: string;
  estimated_age: string;
  phones: string[];
  national_id: string;
  address: string;
  emergency_contact_name: string;
  emergency_contact_phone: string;
  allergies: string;
  notes: string;
}

export function emptyForm(): PatientFormModel {
  return {
    family_name: "",
    given_name: "",
    middle_name: "",
    sex: "",
    birth_date: "",
    estimated_age: "",
    phones: [""],
    national_id: "",
    address: "",
    emergency_contact_name: "",
    emergency_contact_phone: "",
    allergies: "",
    notes: "",
  };
}

/**
 * A new registration started from a search that found nobody: the typed
 * words go where they belong. A date becomes the birth date, a number of
 * 6–15 digits a phone (a 13-digit one a national ID), letters the family,
 * given and middle name in the order typed.
 */
export function prefillFromQuery(query: string): Partial<PatientFormModel> {
  const out: Partial<PatientFormModel> = {};
  const names: string[] = [];
  for (const word of query.trim().split(/\s+/).filter(Boolean)) {
    const digits = word.replace(/\D/g, "");
    if (normalizeDate(word) !== null || /^\d{1,2}[./]\d{1,2}[./]\d{4}$/.test(word)) {
      out.birth_date ??= word;
    } else if (/^[+\d().-]+$/.test(word) && digits.length === 13) {
      out.national_id ??= word;
    } else if (/^[+\d().-]+$/.test(word) && digits.length >= 6 && digits.length <= 15) {
      out.phones ??= [word];
    } else if (/\p{L}/u.test(word)) {
      names.push(word);
    }
  }
  const [family, given, ...middle] = names;
  if (family) out.family_name = family;
  if (given) out.given_name = given;
  if (middle.length) out.middle_name = middle.join(" ");
  return out;
}

/** The edit form for a stored record. An estimated birth date is edited as an age. */
export function formFromPatient(p: Patient, today: Date = new Date()): PatientFormModel {
  const estimated = p.birth_date_estimated;
  const birthYear = Number(p.birth_date.slice(0, 4));
  return {
    family_name: p.family_name,
    given_name: p.given_name,
    middle_name: p.middle_name ?? "",
    sex: p.sex,
    birth_date: estimated ? "" : isoToDotted(p.birth_date),
    estimated_age: estimated ? String(Math.max(0, today.getFullYear() - birthYear)) : "",
    phones: p.phones.length ? [...p.phones] : [""],
    national_id: p.national_id ?? "",
    address: p.address ?? "",
    emergency_contact_name: p.emergency_contact_name ?? "",
    emergency_contact_phone: p.emergency_contact_phone ?? "",
    allergies: p.allergies ?? "",
    notes: p.notes ?? "",
  };
}

const opt = (s: string): string | null => (s.trim() ? s.trim() : null);

export interface Converted {
  input: PatientInput;
  /** Errors the UI finds before asking the core (e.g. an age that is not a number). */
  errors: FieldError[];
  /** For each phone sent, the form row it came from (empty rows are not sent). */
  phoneRows: number[];
}

/**
 * The form as the core's PatientInput. A typed date that parses is sent as
 * ISO; one that does not is sent as typed, so the core reports `bad_date`.
 * With `buddhistEra`, years from 2400 are read as Buddhist-era years.
 */
export function formToInput(f: PatientFormModel, buddhistEra = false): Converted {
  const errors: FieldError[] = [];
  const birthText = f.birth_date.trim();
  const birth_date = birthText ? (normalizeDate(birthText, buddhistEra) ?? birthText) : null;

  let estimated_age: number | null = null;
  const ageText = f.estimated_age.trim();
  if (ageText && !birthText) {
    if (/^\d{1,3}$/.test(ageText)) estimated_age = Number(ageText);
    else errors.push({ field: "estimated_age", code: "out_of_range", message: "must be a whole number of years" });
  }

  const phones: string[] = [];
  const phoneRows: number[] = [];
  f.phones.forEach((p, row) => {
    if (p.trim()) {
      phones.push(p.trim());
      phoneRows.push(row);
    }
  });

  return {
    input: {
      family_name: f.family_name.trim(),
      given_name: f.given_name.trim(),
      middle_name: opt(f.middle_name),
      sex: f.sex === "" ? null : f.sex,
      birth_date,
      estimated_age,
      phones,
      national_id: opt(f.national_id),
      address: opt(f.address),
      emergency_contact_name: opt(f.emergency_contact_name),
      emergency_contact_phone: opt(f.emergency_contact_phone),
      allergies: opt(f.allergies),
      notes: opt(f.notes),
    },
    errors,
    phoneRows,
  };
}

/** Maps the core's `phones.N` (index into the sent list) back to the form row. */
export function remapPhoneErrors(errors: readonly FieldError[], phoneRows: readonly number[]): FieldError[] {
  return errors.map((e) => {
    const m = /^phones\.(\d+)$/.exec(e.field);
    if (!m) return e;
    const row = phoneRows[Number(m[1])];
    return row === undefined ? e : { ...e, field: `phones.${row}` };
  });
}
