import type { ErrorBody } from "../bindings/ErrorBody";
import type { ErrorCode } from "../bindings/ErrorCode";
import type { FieldError } from "../bindings/FieldError";
import type { Language } from "../bindings/Language";
import { ERROR_CODE_VALUES } from "../bindings/codes";
import { translate, hasKey, type MessageKey } from "./i18n";

function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && (ERROR_CODE_VALUES as readonly string[]).includes(v);
}

/**
 * Turns whatever `invoke` rejected with into an ErrorBody. The core always
 * sends `{code, message, fields}`, but a missing command or a plugin error
 * arrives as a plain string.
 */
export function toErrorBody(e: unknown): ErrorBody {
  if (e && typeof e === "object" && "code" in e) {
    const o = e as { code: unknown; message?: unknown; fields?: unknown };
    const fields = Array.isArray(o.fields)
      ? (o.fields as unknown[]).filter(
          (f): f is FieldError =>
            !!f && typeof f === "object" && typeof (f as FieldError).field === "string" && typeof (f as FieldError).code === "string",
        )
      : [];
    return {
      code: isErrorCode(o.code) ? o.code : "internal",
      message: typeof o.message === "string" ? o.message : String(o.code),
      fields,
    };
  }
  if (e instanceof Error) return { code: "internal", message: e.message, fields: [] };
  return { code: "internal", message: typeof e === "string" ? e : "unknown error", fields: [] };
}

/** The user-facing text for an error code. */
export function errorMessage(code: ErrorCode | string, lang: Language): string {
  const key = `error.${code}`;
  return hasKey(key) ? translate(lang, key) : translate(lang, "error.internal");
}

/** The user-facing text for one field's error. */
export function fieldErrorMessage(err: Pick<FieldError, "code" | "message" | "limit">, lang: Language): string {
  const key = `field_error.${err.code}`;
  // A rule with a limit says it: "Too long: at most 100 characters."
  const withLimit = `${key}_limit`;
  if (err.limit !== undefined && hasKey(withLimit)) {
    return translate(lang, withLimit as MessageKey, { limit: err.limit });
  }
  if (hasKey(key)) return translate(lang, key as MessageKey);
  // An unknown code: fall back to the core's English description.
  return err.message || translate(lang, "field_error.invalid");
}

/** Field errors grouped by field name (first error per field wins). */
export function fieldErrorMap(fields: readonly FieldError[]): Record<string, FieldError> {
  const map: Record<string, FieldError> = {};
  for (const f of fields) {
    if (!(f.field in map)) map[f.field] = f;
  }
  return map;
}
