import { describe, expect, it } from "vitest";
import { baseName, joinRemote, parseCopyTarget } from "./remote-path.js";

describe("ID:/path targets", () => {
  it("reads ID:/path as a sandbox path and everything else as local", () => {
    expect(parseCopyTarget("sbabc123:/home/user/a.txt")).toEqual({
      kind: "remote",
      sandboxId: "sbabc123",
      path: "/home/user/a.txt",
    });
    expect(parseCopyTarget("sb1:/")).toEqual({ kind: "remote", sandboxId: "sb1", path: "/" });
    expect(parseCopyTarget("./a:b")).toEqual({ kind: "local", path: "./a:b" });
    expect(parseCopyTarget("/abs/x:/y")).toEqual({ kind: "local", path: "/abs/x:/y" });
    expect(parseCopyTarget("file.txt")).toEqual({ kind: "local", path: "file.txt" });
    expect(parseCopyTarget("-")).toEqual({ kind: "local", path: "-" });
  });

  it("refuses relative sandbox paths", () => {
    expect(() => parseCopyTarget("sb1:home/x")).toThrow(/must be absolute/);
    expect(() => parseCopyTarget("sb1:")).toThrow(/must be absolute/);
  });

  it("names and joins sandbox paths", () => {
    expect(baseName("/a/b/")).toBe("b");
    expect(baseName("/")).toBe("");
    expect(baseName("dir")).toBe("dir");
    expect(joinRemote("/home/user/", "x")).toBe("/home/user/x");
  });
});
