import type { FieldCode } from "../bindings/FieldCode";
import type { FieldError } from "../bindings/FieldError";
import { describe, expect, it } from "vitest";
import { errorMessage, fieldErrorMap, fieldErrorMessage, toErrorBody } from "./errors";

describe("toErrorBody", () => {
  it("keeps a well-formed ErrorBody", () => {
    const body = { code: "validation", message: "bad", fields: [{ field: "family_name", code: "required", message: "is required" }] };
    expect(toErrorBody(body)).toEqual(body);
  });
  it("maps unknown codes to internal", () => {
    expect(toErrorBody({ code: "weird", message: "x" }).code).toBe("internal");
  });
  it("wraps strings and Errors", () => {
    expect(toErrorBody("command foo not found")).toEqual({ code: "internal", message: "command foo not found", fields: [] });
    expect(toErrorBody(new Error("boom")).message).toBe("boom");
    expect(toErrorBody(undefined).code).toBe("internal");
  });
  it("drops malformed field errors", () => {
    expect(toErrorBody({ code: "validation", message: "", fields: [null, { field: "x" }, { field: "a", code: "required", message: "" }] }).fields).toHaveLength(1);
  });
});

describe("field error limits", () => {
  it("say the limit the core names, in every language", () => {
    const tooLong: Pick<FieldError, "code" | "message" | "limit"> = { code: "too_long", message: "must be at most 100 characters", limit: 100 };
    expect(fieldErrorMessage(tooLong, "en")).toBe("Too long: at most 100 characters.");
    expect(fieldErrorMessage(tooLong, "ru")).toBe("Слишком длинно: не более 100 символов.");
    expect(fieldErrorMessage(tooLong, "th")).toBe("ยาวเกินไป: ไม่เกิน 100 ตัวอักษร");
    expect(fieldErrorMessage({ code: "too_short", message: "", limit: 10 }, "en")).toBe("Too short: at least 10 characters.");
  });
  it("keep the limit through toErrorBody", () => {
    const body = toErrorBody({ code: "validation", message: "", fields: [{ field: "notes", code: "too_long", message: "", limit: 2000 }] });
    expect(body.fields[0]?.limit).toBe(2000);
  });
});

describe("messages", () => {
  it("translates error codes", () => {
    expect(errorMessage("invalid_credentials", "en")).toBe("Wrong user name or password.");
    expect(errorMessage("invalid_credentials", "ru")).toBe("Неверное имя пользователя или пароль.");
    expect(errorMessage("invalid_credentials", "th")).toBe("ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง");
    expect(errorMessage("conflict", "en")).toMatch(/reload/i);
  });
  it("falls back to internal for unknown codes", () => {
    expect(errorMessage("nope", "en")).toBe(errorMessage("internal", "en"));
  });
  it("translates field codes and falls back to the core's message", () => {
    expect(fieldErrorMessage({ code: "phone_length", message: "" }, "ru")).toBe("В номере телефона от 6 до 15 цифр.");
    expect(fieldErrorMessage({ code: "brand_new" as FieldCode, message: "must be purple" }, "th")).toBe("must be purple");
    expect(fieldErrorMessage({ code: "brand_new" as FieldCode, message: "" }, "en")).toBe("Invalid value.");
  });
  it("groups field errors by field, first wins", () => {
    const map = fieldErrorMap([
      { field: "a", code: "required", message: "" },
      { field: "a", code: "too_long", message: "" },
      { field: "phones.1", code: "phone_chars", message: "" },
    ]);
    expect(map.a?.code).toBe("required");
    expect(map["phones.1"]?.code).toBe("phone_chars");
  });
});
