import type { Language } from "../bindings/Language";

/** The Intl locale used for each UI language. Thai uses the Buddhist era. */
export const LOCALES: Record<Language, string> = {
  en: "en-GB",
  ru: "ru-RU",
  th: "th-TH",
};

const DATE_OPTIONS: Record<Language, Intl.DateTimeFormatOptions> = {
  en: { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" },
  ru: { day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" },
  th: { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" },
};

const dateFormatters = new Map<Language, Intl.DateTimeFormat>();
const dateTimeFormatters = new Map<Language, Intl.DateTimeFormat>();

/** Parses an ISO calendar date `yyyy-mm-dd` into a UTC Date (no time zone shifts). */
export function parseIsoDate(iso: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  return date;
}

/** A calendar date (ISO `yyyy-mm-dd`) as the user's locale writes it. */
export function formatDate(iso: string | null | undefined, lang: Language): string {
  if (!iso) return "";
  const date = parseIsoDate(iso);
  if (!date) return iso;
  let f = dateFormatters.get(lang);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALES[lang], DATE_OPTIONS[lang]);
    dateFormatters.set(lang, f);
  }
  return f.format(date);
}

/** A timestamp (RFC 3339) in local time, as the user's locale writes it. */
export function formatDateTime(ts: string | null | undefined, lang: Language): string {
  if (!ts) return "";
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return ts;
  let f = dateTimeFormatters.get(lang);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALES[lang], {
      ...DATE_OPTIONS[lang],
      timeZone: undefined,
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    dateTimeFormatters.set(lang, f);
  }
  return f.format(date);
}

/** Whole years between an ISO birth date and `today`. */
export function ageInYears(iso: string, today: Date = new Date()): number | null {
  const d = parseIsoDate(iso);
  if (!d) return null;
  let age = today.getFullYear() - d.getUTCFullYear();
  const m = today.getMonth() - d.getUTCMonth();
  if (m < 0 || (m === 0 && today.getDate() < d.getUTCDate())) age--;
  return age;
}

/** `yyyy-mm-dd` → `dd.mm.yyyy`, the form the birth-date field is edited in. */
export function isoToDotted(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  return m ? `${m[3]}.${m[2]}.${m[1]}` : iso;
}

/** A person's name as lists show it: family, given, middle. */
export function fullName(p: { family_name: string; given_name: string; middle_name: string | null }): string {
  return [p.family_name, p.given_name, p.middle_name].filter((s) => s && s.trim()).join(" ");
}

/** A JSON value from the history or audit log as short text. */
export function formatValue(v: unknown): string {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.length ? v.map((x) => formatValue(x)).join(", ") : "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

const timeFormatters = new Map<Language, Intl.DateTimeFormat>();

/**
 * A recent moment, short: the time alone when it is today (local time),
 * otherwise the date and time. For the status bar's last sync.
 */
export function formatRecent(ts: string | null | undefined, lang: Language, now: Date = new Date()): string {
  if (!ts) return "";
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return ts;
  if (date.toDateString() !== now.toDateString()) return formatDateTime(ts, lang);
  let f = timeFormatters.get(lang);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALES[lang], { hour: "2-digit", minute: "2-digit" });
    timeFormatters.set(lang, f);
  }
  return f.format(date);
}
