using Nacelle.CriServer.Hosting;

namespace Nacelle.Tests.Unit.Hosting;

public sealed class ExecutablePagesTests
{
    private const string Maps = """
        55f5f652b000-55f5f6555000 r--p 00000000 fe:00 5425576                    /usr/bin/nacelle
        55f5f6555000-55f5f70ac000 r-xp 0002a000 fe:00 5425576                    /usr/bin/nacelle
        55f5f70ac000-55f5f770b000 r--p 00b81000 fe:00 5425576                    /usr/bin/nacelle
        55f5f7b94000-55f5f7bec000 rw-p 01668000 fe:00 5425576                    /usr/bin/nacelle
        55f5f7bec000-55f5f8296000 rw-p 00000000 00:00 0
        7f962c2c7000-7f962c41d000 r-xp 00026000 fe:00 332096                     /usr/lib/x86_64-linux-gnu/libc.so.6
        7f962c500000-7f962c501000 r--s 00000000 fe:00 5425576                    /usr/bin/nacelle
        7f962c600000-7f962c601000 r-xp 00000000 fe:00 5425577                    /usr/bin/nacelle-monitor
        7ffe686d5000-7ffe686f6000 rw-p 00000000 00:00 0                          [stack]
        """;

    [Fact]
    public void OnlyTheExecutablesPrivateMappingsAreChosen()
    {
        Assert.Equal(
            [new ExecutablePages.Mapping(0x55f5f652b000, 0x2a000), new ExecutablePages.Mapping(0x55f5f6555000, 0xb57000),
             new ExecutablePages.Mapping(0x55f5f70ac000, 0x65f000), new ExecutablePages.Mapping(0x55f5f7b94000, 0x58000)],
            ExecutablePages.PrivateMappings(Maps, "/usr/bin/nacelle"));
    }

    [Fact]
    public void AReplacedExecutableMatchesNothing()
    {
        var maps = "55f5f6555000-55f5f70ac000 r-xp 0002a000 fe:00 5425576   /usr/bin/nacelle (deleted)\n";
        Assert.Empty(ExecutablePages.PrivateMappings(maps, "/usr/bin/nacelle"));
    }
}
