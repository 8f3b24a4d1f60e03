/** What the merge dialog shows: two records side by side, and what to warn about. */

import type { Patient } from "../bindings/Patient";

/** The fields compared, in the order the dialog lists them. */
export const MERGE_FIELDS = [
  "family_name",
  "given_name",
  "middle_name",
  "sex",
  "birth_date",
  "national_id",
  "phones",
  "address",
  "allergies",
] as const;

export type MergeField = (typeof MERGE_FIELDS)[number];

/** Differences that suggest two different people, not one registered twice. */
export type MergeWarning = "sex" | "birth_date" | "name";

export interface MergeRow {
  field: MergeField;
  keep: string;
  other: string;
  differs: boolean;
}

/** Folds a name for comparison: case, `ё`/`е`, Latin and Cyrillic accents. */
function foldName(s: string): string {
  return s
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .trim();
}

function text(p: Patient, field: MergeField): string {
  if (field === "phones") return p.phones.join(", ");
  const v = p[field];
  return v === null || v === undefined ? "" : String(v);
}

/** Each compared field of both records, marked where they differ. */
export function mergeRows(keep: Patient, other: Patient): MergeRow[] {
  return MERGE_FIELDS.map((field) => {
    const a = text(keep, field);
    const b = text(other, field);
    return { field, keep: a, other: b, differs: a !== b };
  });
}

/** What differs in a way that would join two different people. */
export function mergeWarnings(keep: Patient, other: Patient): MergeWarning[] {
  const out: MergeWarning[] = [];
  const known = (s: string) => s !== "unknown";
  if (known(keep.sex) && known(other.sex) && keep.sex !== other.sex) out.push("sex");
  if (keep.birth_date !== other.birth_date) out.push("birth_date");
  if (
    foldName(keep.family_name) !== foldName(other.family_name) ||
    foldName(keep.given_name) !== foldName(other.given_name)
  ) {
    out.push("name");
  }
  return out;
}
