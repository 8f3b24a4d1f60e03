import { describe, expect, it } from "vitest";
import { ageInYears, formatDate, formatDateTime, formatValue, fullName, isoToDotted, parseIsoDate } from "./format";

describe("formatDate", () => {
  it("writes English dates like 21 Mar 1980", () => {
    expect(formatDate("1980-03-21", "en")).toBe("21 Mar 1980");
  });
  it("writes Russian dates as dd.mm.yyyy", () => {
    expect(formatDate("1980-03-21", "ru")).toBe("21.03.1980");
    expect(formatDate("2001-01-05", "ru")).toBe("05.01.2001");
  });
  it("writes Thai dates in the Buddhist era", () => {
    const s = formatDate("1980-03-21", "th");
    expect(s).toContain("2523");
    expect(s).toContain("21");
    expect(s).toMatch(/มี\.ค\./);
  });
  it("does not shift the day by time zone", () => {
    expect(formatDate("2000-01-01", "ru")).toBe("01.01.2000");
    expect(formatDate("1999-12-31", "ru")).toBe("31.12.1999");
  });
  it("passes through what it cannot parse, and blanks nothing", () => {
    expect(formatDate("not a date", "en")).toBe("not a date");
    expect(formatDate(null, "en")).toBe("");
    expect(formatDate("", "en")).toBe("");
  });
});

describe("formatDateTime", () => {
  it("includes the date and time", () => {
    const s = formatDateTime("2026-03-21T10:15:00Z", "ru");
    expect(s).toMatch(/\d{2}\.\d{2}\.2026/);
    expect(s).toMatch(/\d{2}:\d{2}/);
  });
  it("passes through garbage", () => {
    expect(formatDateTime("garbage", "en")).toBe("garbage");
  });
});

describe("helpers", () => {
  it("parses only real ISO dates", () => {
    expect(parseIsoDate("1980-02-29")).not.toBeNull();
    expect(parseIsoDate("1981-02-29")).toBeNull();
    expect(parseIsoDate("21.03.1980")).toBeNull();
  });
  it("computes ages", () => {
    const today = new Date(2026, 2, 20); // 20 Mar 2026
    expect(ageInYears("1980-03-21", today)).toBe(45);
    expect(ageInYears("1980-03-20", today)).toBe(46);
  });
  it("converts ISO to dotted", () => {
    expect(isoToDotted("1980-03-21")).toBe("21.03.1980");
  });
  it("joins names and skips empty parts", () => {
    expect(fullName({ family_name: "Иванов", given_name: "Иван", middle_name: "Иванович" })).toBe("Иванов Иван Иванович");
    expect(fullName({ family_name: "ใจดี", given_name: "สมชาย", middle_name: null })).toBe("ใจดี สมชาย");
  });
  it("formats history values", () => {
    expect(formatValue(null)).toBe("—");
    expect(formatValue(["+66 81 234 5678", "02 123 4567"])).toBe("+66 81 234 5678, 02 123 4567");
    expect(formatValue([])).toBe("—");
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
    expect(formatValue(42)).toBe("42");
  });
});
