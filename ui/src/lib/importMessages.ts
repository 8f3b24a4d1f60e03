/** What the import dialog says about a file's header and its refused rows, in the user's language. */

import type { FieldError } from "../bindings/FieldError";
import type { ImportRowError } from "../bindings/ImportRowError";
import type { Language } from "../bindings/Language";
import { fieldErrorMessage } from "./errors";
import { hasKey, translate } from "./i18n";

/** A CSV column's label: the form's label for the field it fills. */
export function columnLabel(column: string, lang: Language): string {
  const field = column === "phone" ? "phones" : column;
  const key = `field.${field}`;
  return hasKey(key) ? translate(lang, key) : column;
}

/**
 * One header problem (a field error on `column.<name>` or `column.<n>`,
 * code `missing_column` or `unknown_column`) as a sentence naming the column.
 */
export function headerProblem(err: FieldError, lang: Language): string {
  const column = err.field.replace(/^column\./, "");
  if (err.code === "missing_column") {
    return translate(lang, "import.missing_column", { column, label: columnLabel(column, lang) });
  }
  if (/^\d+$/.test(column)) return translate(lang, "import.unknown_column_at", { position: column });
  return translate(lang, "import.unknown_column", { column });
}

/** A refused row's problem: the column's label and the rule, translated. */
export function rowProblem(err: ImportRowError, lang: Language): string {
  const rule = fieldErrorMessage({ code: err.code, message: err.message, limit: err.limit }, lang);
  return err.field ? `${columnLabel(err.field, lang)}: ${rule}` : rule;
}
