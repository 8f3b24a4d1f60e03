import type { Language } from "../bindings/Language";
import { en, type MessageKey } from "./i18n/en";
import { ru } from "./i18n/ru";
import { th } from "./i18n/th";

export type { MessageKey };

export const LANGUAGES: readonly Language[] = ["en", "ru", "th"];

export const DICTIONARIES: Record<Language, Record<MessageKey, string>> = { en, ru, th };

export type Params = Record<string, string | number>;

export function isLanguage(v: unknown): v is Language {
  return typeof v === "string" && (LANGUAGES as readonly string[]).includes(v);
}

export function hasKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

/** The `{name}` placeholders in a message, sorted. */
export function placeholders(message: string): string[] {
  return [...message.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "").sort();
}

/** The message for `key` in `lang`, with `{name}` placeholders filled in. */
export function translate(lang: Language, key: MessageKey | string, params?: Params): string {
  const dict = DICTIONARIES[lang] ?? en;
  const message = hasKey(key) ? (dict[key] ?? en[key]) : key;
  if (!params) return message;
  return message.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

const STORAGE_KEY = "clinic.language";

/** The language chosen last on this workstation (before anyone signs in). */
export function storedLanguage(): Language {
  try {
    const v = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (isLanguage(v)) return v;
  } catch {
    // storage unavailable
  }
  const nav = globalThis.navigator?.language?.slice(0, 2);
  return isLanguage(nav) ? nav : "en";
}

export function storeLanguage(lang: Language): void {
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, lang);
  } catch {
    // storage unavailable
  }
}
