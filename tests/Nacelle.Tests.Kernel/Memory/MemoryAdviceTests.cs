using System.Globalization;
using System.IO.MemoryMappedFiles;
using Nacelle.ContainerCore.Interop;

namespace Nacelle.Tests.Kernel.Memory;

public sealed class MemoryAdviceTests
{
    private const int Length = 4 << 20;

    [Fact]
    public void PageOutTakesAFilesPagesOutOfTheResidentSetAndTheyReadTheSameAfterwards()
    {
        var path = Path.Combine(Path.GetTempPath(), $"nacelle-pageout-{Guid.NewGuid():N}");
        try
        {
            var content = new byte[Length];
            Random.Shared.NextBytes(content);
            // Written back before mapping: dirty page-cache pages are not reclaimed at once (the page-out only starts
            // their writeback), which failed this test in CI when the disk was slow.
            using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            Assert.SkipWhen(IsTmpfs(path), "the temp directory is tmpfs: its pages are memory, not file pages to reclaim");

            using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            using var view = file.CreateViewAccessor(0, Length, MemoryMappedFileAccess.Read);
            var sum = 0L;
            for (var offset = 0; offset < Length; offset += 4096)
            {
                sum += view.ReadByte(offset);
            }

            var start = (ulong)view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (ulong)view.PointerOffset;
            var before = ResidentKb(start);
            Assert.True(before >= 3 << 10, $"{before} KiB resident after reading every page");

            Assert.Equal(0, MemoryAdvice.PageOut((nuint)start, Length));

            var after = ResidentKb(start);
            Assert.True(after < before / 4, $"{before} KiB resident before, {after} KiB after");
            var again = 0L;
            for (var offset = 0; offset < Length; offset += 4096)
            {
                again += view.ReadByte(offset);
            }

            Assert.Equal(sum, again);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Rss of the mapping of this process that contains <paramref name="address"/> (/proc/self/smaps).</summary>
    private static long ResidentKb(ulong address)
    {
        var inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            var dash = line.IndexOf('-', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var from)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var to))
            {
                inside = from <= address && address < to;
            }
            else if (inside && line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(4).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"no mapping contains 0x{address:x}");
    }

    private static bool IsTmpfs(string path) =>
        File.ReadLines("/proc/self/mounts").Select(l => l.Split(' ')).Where(f => f.Length > 2 && path.StartsWith(f[1].TrimEnd('/') + "/", StringComparison.Ordinal))
            .OrderByDescending(f => f[1].Length).FirstOrDefault()?[2] == "tmpfs";
}
