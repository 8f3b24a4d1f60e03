// Dialogs keep focus and answer Esc after a round trip: the button that
// had focus is disabled while busy and re-rendered after, which drops the
// browser's focus to the page.
import { afterEach, describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import DialogProbe from "./test/DialogProbe.svelte";
import { clearMocks } from "./test/fakeCore";

afterEach(() => clearMocks());

describe("Dialog", () => {
  it("takes focus back after a round trip, and Esc closes it from anywhere", async () => {
    let closed = 0;
    let finish: () => void = () => {};
    render(DialogProbe, {
      props: {
        onclose: () => closed++,
        roundTrip: () => new Promise<void>((r) => (finish = r)),
      },
    });
    const dialog = screen.getByTestId("probe-dialog");
    screen.getByTestId("probe-go").focus();
    await fireEvent.click(screen.getByTestId("probe-go"));
    finish();
    await waitFor(() => expect(screen.getByTestId("probe-go").textContent).toBe("Go 1"));
    await waitFor(() => expect(dialog.contains(document.activeElement)).toBe(true));
    // Even with focus on the page itself, Esc reaches the dialog.
    (document.activeElement as HTMLElement).blur();
    await fireEvent.keyDown(window, { key: "Escape" });
    expect(closed).toBe(1);
  });
});
