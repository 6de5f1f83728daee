using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using Nacelle.ContainerCore.Interop;
using Nacelle.Sandbox.Streams;

namespace Nacelle.Tests.Unit.Sandbox.Streams;

/// <summary>The stream over a monitor-given pipe end: reads to the end, writes with backpressure, and a wait that a
/// cancellation ends at once, whoever else holds the pipe open.</summary>
public sealed class DescriptorStreamTests
{
    /// <summary>A pipe as two owned descriptors (read end, write end).</summary>
    private static (SafeFileHandle Read, SafeFileHandle Write) Pipe()
    {
        using var pipe = new AnonymousPipeServerStream(PipeDirection.In);
        var read = SpawnCalls.DuplicateAtLeast(new SafeFileHandle(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false), 3);
        var write = SpawnCalls.DuplicateAtLeast(new SafeFileHandle(pipe.ClientSafePipeHandle.DangerousGetHandle(), ownsHandle: false), 3);
        pipe.DisposeLocalCopyOfClientHandle();
        return (read, write);
    }

    [Fact]
    public async Task Reads_what_was_written_then_the_end_once_every_writer_closed()
    {
        var (read, write) = Pipe();
        using var reader = new DescriptorStream(read, read: true);
        using (var writer = new DescriptorStream(write, read: false))
        {
            await writer.WriteAsync("hello, pipe"u8.ToArray());
        }

        var copy = new MemoryStream();
        await reader.CopyToAsync(copy);
        Assert.Equal("hello, pipe"u8.ToArray(), copy.ToArray());
        Assert.Equal(0, await reader.ReadAsync(new byte[8]));
    }

    [Fact]
    public async Task A_read_waiting_on_a_pipe_someone_keeps_open_ends_when_cancelled()
    {
        var (read, write) = Pipe();
        using var keptOpen = write; // a background process still holding the write end
        using var reader = new DescriptorStream(read, read: true);
        using var cancel = new CancellationTokenSource();

        var pending = reader.ReadAsync(new byte[16], cancel.Token).AsTask();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_write_larger_than_the_pipe_waits_for_the_reader_and_arrives_whole()
    {
        var (read, write) = Pipe();
        var data = new byte[1 << 20];
        Random.Shared.NextBytes(data);
        using var reader = new DescriptorStream(read, read: true);
        var received = new MemoryStream();
        Task writing;
        using (var writer = new DescriptorStream(write, read: false))
        {
            writing = writer.WriteAsync(data).AsTask();
            await Task.Delay(50);
            Assert.False(writing.IsCompleted, "1 MiB fit in a pipe without a reader");
            var copying = reader.CopyToAsync(received);
            await writing.WaitAsync(TimeSpan.FromSeconds(30));
            writer.Dispose();
            await copying.WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Equal(data, received.ToArray());
    }

    [Fact]
    public async Task Writing_to_a_pipe_nobody_reads_any_more_fails_with_an_IOException()
    {
        var (read, write) = Pipe();
        read.Dispose();
        using var writer = new DescriptorStream(write, read: false);

        await Assert.ThrowsAsync<IOException>(async () => await writer.WriteAsync(new byte[10]));
    }
}
