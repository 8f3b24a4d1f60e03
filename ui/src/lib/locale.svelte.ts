import type { Language } from "../bindings/Language";
import type { ErrorBody } from "../bindings/ErrorBody";
import { storeLanguage, storedLanguage, translate, type MessageKey, type Params } from "./i18n";
import { errorMessage, fieldErrorMessage } from "./errors";
import { formatDate, formatDateTime, formatRecent } from "./format";

/** The UI language, shared by every component. */
export const locale = $state<{ lang: Language }>({ lang: storedLanguage() });

export function setLanguage(lang: Language): void {
  locale.lang = lang;
  storeLanguage(lang);
  if (typeof document !== "undefined") document.documentElement.lang = lang;
}

/** Translates `key` in the current language (reactive in templates). */
export function t(key: MessageKey, params?: Params): string {
  return translate(locale.lang, key, params);
}

export function tError(err: Pick<ErrorBody, "code">): string {
  return errorMessage(err.code, locale.lang);
}

export function tField(err: { code: string; message: string }): string {
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
