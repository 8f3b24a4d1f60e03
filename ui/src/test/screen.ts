/**
 * What every component test file shares: finding elements by test id,
 * typing into them, and a clean start for each test (English, signed out,
 * no toasts, no fake core left over from the test before).
 */
import { afterEach, beforeEach } from "vitest";
import { fireEvent, screen } from "@testing-library/svelte";
import { resetAfterSignOut, toasts } from "../lib/state.svelte";
import { setLanguage } from "../lib/locale.svelte";
import { clearMocks } from "./fakeCore";

/** The element with this test id; throws when there is none. */
export const byId = (id: string) => screen.getByTestId(id);

/** Types a whole value into the input with this test id. */
export const type = (id: string, value: string) => fireEvent.input(byId(id), { target: { value } });

/**
 * Registers hooks that give each test in the file the same clean start, so
 * that no test sees what the one before left behind. A file's own
 * `beforeEach` (registered after this call) runs after it.
 */
export function startEachTestClean(): void {
  beforeEach(() => {
    setLanguage("en");
    resetAfterSignOut();
    toasts.items.splice(0);
  });
  afterEach(() => clearMocks());
}
