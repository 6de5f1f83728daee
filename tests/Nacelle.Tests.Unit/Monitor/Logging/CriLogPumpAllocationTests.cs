using Nacelle.Monitor.Logging;

namespace Nacelle.Tests.Unit.Monitor.Logging;

/// <summary>
/// The log pump's path (read, split into CRI records, batched write, tap) allocates nothing per read or per line: a
/// monitor's heap must not grow with its container's output (docs/architecture.md, "The monitor's memory"). A design
/// check counted in bytes, not a timing: many MB of short lines through a real pipe, and the whole process's allocations
/// over it stay under a small bound per MB. Alone in its collection, so no other test allocates meanwhile.
/// </summary>
[Collection(CriLogPumpAllocationCollection.Name)]
public sealed class CriLogPumpAllocationTests : IDisposable
{
    private const int Megabytes = 64;
    private const int LineLength = 100;

    // What one MB may cost: the reactor's wait between reads (about 125 bytes each, at most one per read) and nothing
    // per line (measured: 2-3 KB per MB). A 24-byte object per 100-byte line would be 250 KB per MB.
    private const long BoundPerMegabyte = 8 * 1024;

    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-pump-alloc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(4000)]   // about busybox cat's writes: the pump wakes for nearly every one
    [InlineData(64000)]  // about full pipes
    public async Task PumpingManyMegabytesOfLinesAllocatesAlmostNothing(int chunk)
    {
        var line = new byte[LineLength];
        Array.Fill(line, (byte)'x');
        line[^1] = (byte)'\n';
        var block = new byte[chunk]; // whole lines
        for (var i = 0; i < block.Length; i++)
        {
            block[i] = line[i % LineLength];
        }

        var path = Path.Combine(_dir, "0.log");
        var tap = new CountingTap();
        using var writer = CriLogWriter.Open(path, new CriLogWriterOptions { MaxLineSize = 16384 });
        using var pipe = new TestPipe();

        // Warm up: first-use allocations (the reactor, its registration, statics, JIT) are not per read.
        var warmup = (1L << 20) / chunk * chunk;
        await PumpAsync(pipe, writer, tap, block, warmup);
        var total = ((long)Megabytes << 20) / chunk * chunk;
        // The count is the whole process's: work other tests left running (timers, watchers) can add to one attempt, but a
        // pump that allocates per read or per line does so in every attempt; the least of up to three is what counts.
        var allocated = long.MaxValue;
        var pumped = warmup;
        for (var attempt = 0; attempt < 3 && allocated > BoundPerMegabyte * Megabytes; attempt++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            await PumpAsync(pipe, writer, tap, block, total);
            allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
            pumped += total;
        }

        Assert.Equal(pumped, tap.Bytes);
        Assert.Equal(pumped / LineLength, writer.WrittenRecords);
        TestContext.Current.SendDiagnosticMessage($"chunk {chunk}: {allocated} bytes allocated for {Megabytes} MB ({allocated / Megabytes} per MB)");
        Assert.True(allocated <= BoundPerMegabyte * Megabytes,
            $"{allocated} bytes allocated pumping {Megabytes} MB in writes of {chunk} ({allocated / Megabytes} per MB, bound {BoundPerMegabyte})");
    }

    /// <summary>Writes <paramref name="bytes"/> from a thread of its own (blocking writes, no allocation) while the pump
    /// runs; the pump is cancelled once the tap saw them all.</summary>
    private static async Task PumpAsync(TestPipe pipe, CriLogWriter writer, CountingTap tap, byte[] block, long bytes)
    {
        var target = tap.Bytes + bytes;
        using var stop = new CancellationTokenSource();
        tap.Reached(target, stop);
        var pump = CriLogPump.RunAsync(pipe.Read, writer, CriLogStream.Stdout, tap, stop.Token);
        var feeder = new Thread(() =>
        {
            for (long written = 0; written < bytes; written += block.Length)
            {
                pipe.Writer.Write(block);
            }
        });
        feeder.Start();
        await pump.WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken);
        feeder.Join();
    }

    private sealed class CountingTap : IOutputTap
    {
        private long _target = long.MaxValue;
        private CancellationTokenSource? _stop;

        public long Bytes { get; private set; }

        public void Reached(long target, CancellationTokenSource stop)
        {
            _target = target;
            _stop = stop;
        }

        public void Write(CriLogStream stream, ReadOnlySpan<byte> data)
        {
            Bytes += data.Length;
            if (Bytes >= _target)
            {
                _stop!.Cancel();
            }
        }

        public void End(CriLogStream stream)
        {
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CriLogPumpAllocationCollection
{
    public const string Name = "counts the whole process's allocations";
}
