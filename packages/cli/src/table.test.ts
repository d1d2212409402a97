import { describe, expect, it } from "vitest";
import { formatTable } from "./table.js";

describe("formatTable", () => {
  it("pads every column but the last to its widest cell", () => {
    expect(
      formatTable(
        ["ID", "STATE"],
        [
          ["sb1", "running"],
          ["sb12345", ""],
        ],
      ),
    ).toBe("ID       STATE\nsb1      running\nsb12345");
  });
});
