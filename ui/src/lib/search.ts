/** Helpers for the one patient search box. */

export type QueryKind = "empty" | "mrn" | "date" | "number" | "name_date" | "name";

const MRN_RE = /^[0-9A-Za-z]{3}-\d{1,6}(-[0-9A-Za-z]?)?$/;
const DOTTED_DATE_RE = /^(\d{1,2})[./](\d{1,2})[./](\d{4})$/;
const ISO_DATE_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;

/** Fewest digits the core searches as a number (its `national_id::MIN_SEARCH_CHARS`). */
const MIN_NUMBER_DIGITS = 4;

function isDate(word: string): boolean {
  return DOTTED_DATE_RE.test(word) || ISO_DATE_RE.test(word);
}

/** What the user seems to be searching for (used for a hint under the box). */
export function classifyQuery(raw: string): QueryKind {
  const q = raw.trim();
  if (!q) return "empty";
  if (isDate(q)) return "date";
  if (MRN_RE.test(q) && (/[A-Za-z]/.test(q) || q.split("-").length === 3)) return "mrn";
  const digits = q.replace(/\D/g, "");
  // A phone, a national ID or an MRN's sequence digits: the core tries all.
  if (/^[+\d\s().-]+$/.test(q) && digits.length >= MIN_NUMBER_DIGITS) return "number";
  if (q.split(/\s+/).some(isDate)) return "name_date";
  return "name";
}

/**
 * Normalises a typed date (dd.mm.yyyy, dd/mm/yyyy or yyyy-mm-dd) to ISO
 * `yyyy-mm-dd`; `null` if it is not a real date. With `buddhistEra`, years
 * of 2400 and above are read as Buddhist-era years (Thai users often type
 * those) and converted to the Gregorian year.
 */
export function normalizeDate(raw: string, buddhistEra = false): string | null {
  const q = raw.trim();
  let y: number, m: number, d: number;
  let match = DOTTED_DATE_RE.exec(q);
  if (match) {
    d = Number(match[1]);
    m = Number(match[2]);
    y = Number(match[3]);
  } else if ((match = ISO_DATE_RE.exec(q))) {
    y = Number(match[1]);
    m = Number(match[2]);
    d = Number(match[3]);
  } else {
    return null;
  }
  if (buddhistEra && y >= 2400) y -= 543;
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null;
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

/**
 * The query as sent to the core: whitespace collapsed, and each word that is
 * a date (alone, or beside a name) normalised to ISO, Buddhist-era years
 * converted when asked.
 */
export function prepareQuery(raw: string, buddhistEra = false): string {
  return raw
    .trim()
    .split(/\s+/)
    .map((word) => (isDate(word) ? (normalizeDate(word, buddhistEra) ?? word) : word))
    .join(" ");
}

/** Moves a highlighted row by `delta`, staying within `length` rows (-1 = none). */
export function moveSelection(current: number, delta: number, length: number): number {
  if (length <= 0) return -1;
  if (current < 0) return delta > 0 ? 0 : length - 1;
  return Math.min(length - 1, Math.max(0, current + delta));
}

export interface Debounced<A extends unknown[]> {
  (...args: A): void;
  cancel(): void;
  flush(): void;
}

/** Calls `fn` once, `ms` after the last call. */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): Debounced<A> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastArgs: A | null = null;
  const run = () => {
    timer = null;
    if (lastArgs) {
      const args = lastArgs;
      lastArgs = null;
      fn(...args);
    }
  };
  const d = ((...args: A) => {
    lastArgs = args;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, ms);
  }) as Debounced<A>;
  d.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    lastArgs = null;
  };
  d.flush = () => {
    if (timer) clearTimeout(timer);
    run();
  };
  return d;
}

/**
 * Drops stale answers: each search gets a ticket, and only the newest
 * ticket's answer is shown.
 */
export class LatestOnly {
  private seq = 0;
  next(): number {
    return ++this.seq;
  }
  isLatest(ticket: number): boolean {
    return ticket === this.seq;
  }
}
