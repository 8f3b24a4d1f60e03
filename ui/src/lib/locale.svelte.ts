import type { Language } from "../bindings/Language";
import type { FieldError } from "../bindings/FieldError";
import type { ErrorBody } from "../bindings/ErrorBody";
import { storeLanguage, storedLanguage, translate, type MessageKey, type Params } from "./i18n";
import { errorMessage, fieldErrorMessage } from "./errors";
import { formatDate, formatDateTime, formatRecent } from "./format";

/** The UI language, shared by every component. */
export const locale = $state<{ lang: Language }>({ lang: storedLanguage() });

/**
 * Sets the workstation's language: the one the set-up and sign-in screens
 * show, kept for the next start and for after each sign-out.
 */
export function setLanguage(lang: Language): void {
  storeLanguage(lang);
  showLanguage(lang);
}

/**
 * Shows `lang` for the signed-in user only: the workstation's language
 * comes back at sign-out, so a Russian receptionist does not get the Thai
 * nurse's language on the sign-in screen.
 */
export function showLanguage(lang: Language): void {
  locale.lang = lang;
  if (typeof document !== "undefined") document.documentElement.lang = lang;
}

/** Back to the workstation's language (after sign-out). */
export function showWorkstationLanguage(): void {
  showLanguage(storedLanguage());
}

/** Translates `key` in the current language (reactive in templates). */
export function t(key: MessageKey, params?: Params): string {
  return translate(locale.lang, key, params);
}

export function tError(err: Pick<ErrorBody, "code">): string {
  return errorMessage(err.code, locale.lang);
}

export function tField(err: Pick<FieldError, "code" | "message" | "limit">): string {
  return fieldErrorMessage(err, locale.lang);
}

export function fmtDate(iso: string | null | undefined): string {
  return formatDate(iso, locale.lang);
}

export function fmtDateTime(ts: string | null | undefined): string {
  return formatDateTime(ts, locale.lang);
}

export function fmtRecent(ts: string | null | undefined): string {
  return formatRecent(ts, locale.lang);
}
