import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { classifyQuery, debounce, LatestOnly, moveSelection, normalizeDate, prepareQuery } from "./search";

describe("classifyQuery", () => {
  it.each([
    ["", "empty"],
    ["   ", "empty"],
    ["ABC-000123-7", "mrn"],
    ["k7q-12", "mrn"],
    ["21.03.1980", "date"],
    ["1980-03-21", "date"],
    ["21/03/1980", "date"],
    ["+66 81 234 5678", "number"],
    ["8(912)345-67-89", "number"],
    ["1-1007-00123-45-6", "number"],
    ["000053", "number"],
    ["123", "name"],
    ["smith 1970-01-01", "name_date"],
    ["21.03.1980 Иванов", "name_date"],
    ["สมช", "name"],
    ["Иванов Иван", "name"],
    ["12", "name"],
  ])("%s → %s", (q, kind) => {
    expect(classifyQuery(q)).toBe(kind);
  });
});

describe("normalizeDate", () => {
  it("reads dotted, slashed and ISO dates", () => {
    expect(normalizeDate("21.03.1980")).toBe("1980-03-21");
    expect(normalizeDate("1.3.1980")).toBe("1980-03-01");
    expect(normalizeDate("21/03/1980")).toBe("1980-03-21");
    expect(normalizeDate(" 1980-03-21 ")).toBe("1980-03-21");
  });
  it("refuses impossible dates", () => {
    expect(normalizeDate("31.02.1980")).toBeNull();
    expect(normalizeDate("1980-13-01")).toBeNull();
    expect(normalizeDate("yesterday")).toBeNull();
  });
  it("converts Buddhist-era years only when asked", () => {
    expect(normalizeDate("21.03.2523", true)).toBe("1980-03-21");
    expect(normalizeDate("21.03.2523", false)).toBe("2523-03-21");
    expect(normalizeDate("21.03.1980", true)).toBe("1980-03-21");
  });
});

describe("prepareQuery", () => {
  it("normalises dates and whitespace", () => {
    expect(prepareQuery(" 21.03.1980 ")).toBe("1980-03-21");
    expect(prepareQuery("Иванов   Иван")).toBe("Иванов Иван");
    expect(prepareQuery("31.02.1980")).toBe("31.02.1980");
  });
  it("normalises a date beside a name, Buddhist-era years included", () => {
    expect(prepareQuery("Иванов  21.03.1980")).toBe("Иванов 1980-03-21");
    expect(prepareQuery("สมชาย 21.03.2523", true)).toBe("สมชาย 1980-03-21");
    expect(prepareQuery("Smith 21.03.2523", false)).toBe("Smith 2523-03-21");
  });
});

describe("moveSelection", () => {
  it("moves within bounds", () => {
    expect(moveSelection(-1, 1, 3)).toBe(0);
    expect(moveSelection(-1, -1, 3)).toBe(2);
    expect(moveSelection(0, 1, 3)).toBe(1);
    expect(moveSelection(2, 1, 3)).toBe(2);
    expect(moveSelection(0, -1, 3)).toBe(0);
    expect(moveSelection(1, 1, 0)).toBe(-1);
  });
});

describe("debounce", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("calls once with the last arguments", () => {
    const fn = vi.fn();
    const d = debounce(fn, 150);
    d("a");
    d("ab");
    vi.advanceTimersByTime(100);
    d("abc");
    vi.advanceTimersByTime(149);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledExactlyOnceWith("abc");
  });

  it("can be cancelled and flushed", () => {
    const fn = vi.fn();
    const d = debounce(fn, 150);
    d("x");
    d.cancel();
    vi.advanceTimersByTime(500);
    expect(fn).not.toHaveBeenCalled();
    d("y");
    d.flush();
    expect(fn).toHaveBeenCalledExactlyOnceWith("y");
  });
});

describe("LatestOnly", () => {
  it("only the newest ticket is latest", () => {
    const l = new LatestOnly();
    const a = l.next();
    const b = l.next();
    expect(l.isLatest(a)).toBe(false);
    expect(l.isLatest(b)).toBe(true);
  });
});
